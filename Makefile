# quantdesk: `make help` lists the targets. Everything runs inside .venv, built from uv.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Write .pyc files at install time: some hosts set PYTHONDONTWRITEBYTECODE, and without them every
# command start compiles pandas, SQLAlchemy and numba from source (seconds instead of a second).
export UV_COMPILE_BYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt bench migrate demo clean docker-up docker-down

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# One stamp per flavour, so `make run` never drags in dev tools and a lock change reinstalls.
$(VENV)/.installed-app: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --quiet
	@touch $@

$(VENV)/.installed-dev: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --quiet --extra dev
	@touch $@ $(VENV)/.installed-app

run: $(VENV)/.installed-app ## Migrate ./quantdesk.db, load the demo data if empty, serve on http://127.0.0.1:8000
	$(BIN)/quantdesk db upgrade
	$(BIN)/quantdesk demo --if-empty
	QUANTDESK_OPEN_SIGNUP=$${QUANTDESK_OPEN_SIGNUP:-true} $(BIN)/quantdesk serve

test: $(VENV)/.installed-dev lint ## ruff, mypy and the whole pytest suite (PostgreSQL too when QUANTDESK_TEST_POSTGRES_URL is set)
	$(BIN)/pytest -n auto --dist loadscope

lint: $(VENV)/.installed-dev ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

fmt: $(VENV)/.installed-dev ## Format and auto-fix
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

$(VENV)/.installed-bench: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --quiet --extra dev --extra bench
	@touch $@ $(VENV)/.installed-dev $(VENV)/.installed-app

bench: $(VENV)/.installed-bench ## Benchmarks next to their peers (PostgreSQL: QUANTDESK_BENCH_POSTGRES_URL or the local server)
	$(BIN)/python -m benchmarks.ingest
	$(BIN)/python -m benchmarks.pg_driver
	$(BIN)/python -m benchmarks.analytics
	$(BIN)/python -m benchmarks.backtest
	$(BIN)/python -m benchmarks.forecast
	$(BIN)/python -m benchmarks.trading
	$(BIN)/python -m benchmarks.signals
	$(BIN)/python -m benchmarks.soak

migrate: $(VENV)/.installed-app ## Apply database migrations (quantdesk db upgrade)
	$(BIN)/quantdesk db upgrade

demo: $(VENV)/.installed-app ## Load the synthetic demo data set
	$(BIN)/quantdesk demo

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache htmlcov .coverage

docker-up: ## Build the image and start quantdesk on PostgreSQL (docker compose, http://localhost:8000)
	docker compose up -d --build

docker-down: ## Stop the compose services (the database volume is kept)
	docker compose down
