# quantdesk: a slim image that runs as an unprivileged user. Build: `docker build -t quantdesk .`
# Stage 1 installs exactly uv.lock into /opt/venv; stage 2 copies that environment and nothing else.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project
COPY src ./src
RUN uv sync --frozen --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 quantdesk && mkdir /data && chown quantdesk /data
COPY --from=build /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/quantdesk-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    QUANTDESK_HOST=0.0.0.0 \
    QUANTDESK_PORT=8000 \
    QUANTDESK_LOG_FORMAT=json \
    QUANTDESK_DATABASE_URL=sqlite:////data/quantdesk.db
USER quantdesk
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
ENTRYPOINT ["quantdesk-entrypoint"]
