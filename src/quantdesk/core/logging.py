"""Logging set-up: text lines for people or JSON lines for machines (``QUANTDESK_LOG_FORMAT``), every record
with the id of the request it belongs to. URLs carry secrets (Alpha Vantage keys, webhook tokens, socket
keys): they never reach a log."""

import logging
import re
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

# httpx logs every request URL at INFO, and Alpha Vantage takes its key in the query string.
QUIET_LOGGERS = ("httpx", "httpcore")
# A webhook's token is its path; a socket's API key or a provider's key may be in the query string.
SECRET_IN_PATH = re.compile(
    r"(/webhooks/)[^/\s?\"]+|([?&](?:token|apikey|api_key|key|x_cg_pro_api_key|x_cg_demo_api_key)=)[^&\s\"]+",
    re.IGNORECASE,
)
REQUEST_ID: ContextVar[str] = ContextVar("quantdesk_request_id", default="-")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(request_id)s %(message)s"
OURS = "quantdesk_handler"


def redact(text: str) -> str:
    return SECRET_IN_PATH.sub(lambda m: (m.group(1) or m.group(2)) + "<redacted>", text)


class RedactSecrets(logging.Filter):
    """Rewrites log lines (uvicorn passes the path as an argument) without the secrets in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def _handler(fmt: str) -> logging.Handler:
    handler = logging.StreamHandler()
    if fmt == "json":
        renamed = {"levelname": "level", "name": "logger"}
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=renamed, timestamp="time"))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(WithRequestId())
    handler.addFilter(RedactSecrets())
    setattr(handler, OURS, True)
    return handler


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """One handler of ours on the root logger (replacing an earlier one), uvicorn's loggers sent to it."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in [h for h in root.handlers if getattr(h, OURS, False)]:
        root.removeHandler(old)
    root.addHandler(_handler(fmt))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # quantdesk.access writes one line per request, with its id and without secrets: uvicorn's is a duplicate.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    for name in ("uvicorn.access", "uvicorn.error", "quantdesk.api", "quantdesk.access"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
