"""Shared fixtures: a migrated database per engine kind, cleaned before each test.

Integration tests take ``database_url`` (directly or through ``engine``/``session``/``client``) and
run once on SQLite and once on PostgreSQL when ``QUANTDESK_TEST_POSTGRES_URL`` is set. Each test
starts from empty tables, and data is committed as in production, so the API, the CLI and
separate processes all see the same database.
"""

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.api.app import create_app
from quantdesk.backtest import plugins
from quantdesk.core import config, migrate
from quantdesk.core.config import Settings
from quantdesk.core.db import Base, create_engine, create_sessionmaker, session_scope
from quantdesk.models import load_all_models

POSTGRES_URL = os.environ.get("QUANTDESK_TEST_POSTGRES_URL")
FIXTURES = Path(__file__).parent / "fixtures"
load_all_models()


def postgres_admin_dsn(url: str) -> str:
    """A libpq DSN for ``url``'s server, for CREATE/DROP DATABASE."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def recreate_postgres_database(url: str, name: str) -> str:
    """Drop and create database ``name`` on ``url``'s server; return its async URL."""
    with psycopg.connect(postgres_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return config.normalise_database_url(make_url(url).set(database=name).render_as_string(hide_password=False))


def drop_postgres_database(url: str, name: str) -> None:
    with psycopg.connect(postgres_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'quantdesk-test.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("QUANTDESK_TEST_POSTGRES_URL is not set")
    name = f"quantdesk_pytest_{os.getpid()}"
    url = recreate_postgres_database(POSTGRES_URL, name)
    migrate.upgrade(url)
    yield url
    drop_postgres_database(POSTGRES_URL, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


async def empty_all_tables(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


def sqlite_worker_threads() -> set[threading.Thread]:
    """aiosqlite's threads: one per open SQLite connection."""
    return {thread for thread in threading.enumerate() if thread.name.endswith("(_connection_worker_thread)")}


async def sqlite_threads_finished(before: set[threading.Thread], timeout_s: float = 5.0) -> None:
    """Wait, while the test's event loop is still open, for the aiosqlite threads started since ``before``.

    A connection torn down without an awaited close (a query cancelled with its task, a connection
    dropped by the pool) is closed later on its own thread, which then hands the result to the loop
    that asked: if that loop has closed by then, the thread dies with "Event loop is closed", reported
    in whichever test runs next."""
    deadline = time.monotonic() + timeout_s
    for thread in sqlite_worker_threads() - before:
        # Joined from another thread: this loop keeps running, so the thread can hand over its results.
        await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    threads = sqlite_worker_threads()
    engine = create_engine(database_url)
    await empty_all_tables(engine)
    yield engine
    await engine.dispose()
    await sqlite_threads_finished(threads)  # the application's engine and the test's both closed now


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        provider_backoff_s=0.0,
        provider_max_retries=2,
        alphavantage_api_key="TESTKEY123",
        _env_file=None,
    )


async def make_user(engine: AsyncEngine, username: str, role: str = "trader") -> str:
    """A user committed to the test database; returns their API key."""
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        _, key = await accounts.create_user(session, username, role=role)
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin_key(engine: AsyncEngine) -> str:
    return await make_user(engine, "root", role="admin")


@pytest.fixture(scope="session")
def application() -> FastAPI:
    """One application for the tests that start it with their own settings: FastAPI builds an
    application's routes on its first requests, and that took longer than most tests."""
    return create_app(Settings(_env_file=None))


@pytest.fixture
async def app(application: FastAPI, settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The application started on the test's database with the test's settings (a test may change them
    while it runs): what the lifespan sets up is new for every test."""
    application.state.settings = settings
    async with application.router.lifespan_context(application):
        yield application


def http_client(app: FastAPI, key: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = bearer(key) if key else None
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest.fixture
async def client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as the admin 'root' (market data changes need an admin)."""
    async with http_client(app, admin_key) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as http:
        yield http


@pytest.fixture
def use_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the process settings (CLI, create_app()) at the test database."""
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", database_url)
    config.get_settings.cache_clear()
    yield database_url
    config.get_settings.cache_clear()


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements the block sends, as the driver receives them."""
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


EXAMPLE_STRATEGIES = Path(__file__).parents[1] / "examples" / "strategies"


@pytest.fixture
def installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package installed the way pip leaves one: its module and a dist-info with entry points."""
    (tmp_path / "acme_strategies").mkdir()
    (tmp_path / "acme_strategies" / "__init__.py").write_text("")
    (tmp_path / "acme_strategies" / "donchian.py").write_text((EXAMPLE_STRATEGIES / "donchian_breakout.py").read_text())
    (tmp_path / "acme_strategies" / "broken.py").write_text("raise RuntimeError('oops')\n")
    info = tmp_path / "acme_strategies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strategies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[quantdesk.strategies]\n"
        "channel_breakout = acme_strategies.donchian\n"
        "broken = acme_strategies.broken\n"
        "sma_cross = acme_strategies.donchian\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.installed.cache_clear()
    yield tmp_path
    plugins.installed.cache_clear()
    for name in [m for m in sys.modules if m.startswith("acme_strategies")]:
        del sys.modules[name]
