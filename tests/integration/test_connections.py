"""Pooled PostgreSQL connections that die (a database restart, a network cut, an administrator's
pg_terminate_backend): the next request either never notices or is told to retry, never a 500."""

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.api.app import create_app
from quantdesk.core.config import Settings
from quantdesk.core.db import create_engine
from tests.conftest import POSTGRES_URL, http_client, postgres_admin_dsn

pytestmark = pytest.mark.postgres


def terminate_backends(url: str) -> int:
    """End every server process of ``url``'s database (but the caller's): what a restart does to a pool."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_admin_dsn(POSTGRES_URL or url), autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return ended[0] if ended else 0


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_that_died_while_idle_in_the_pool_is_replaced_before_use(postgresql_url: str):
    engine = create_engine(postgresql_url, ping_after_idle_s=0.05)
    try:
        first = await backend_pid(engine)
        assert terminate_backends(postgresql_url) >= 1
        await asyncio.sleep(0.1)  # idle for longer than the ping threshold
        assert await backend_pid(engine) != first
    finally:
        await engine.dispose()


@pytest.fixture
async def app(postgresql_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(Settings(database_url=postgresql_url, broker_worker=False, _env_file=None))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_request_on_a_connection_that_died_a_moment_ago_is_a_503_to_retry_and_the_retry_works(
    app: FastAPI, postgresql_url: str
):
    """A connection back in the pool less than a second ago is not pinged (the ping cost a third of the
    cheapest request): if it died since, that request fails, but as a 503 with Retry-After."""
    async with http_client(app) as http:
        assert (await http.get("/api/v1/instruments")).status_code == 200
        terminate_backends(postgresql_url)
        lost = await http.get("/api/v1/instruments")
        retried = await http.get("/api/v1/instruments")
    assert lost.status_code == 503, lost.text
    assert lost.json()["error"] == "database_unavailable"
    assert lost.headers["retry-after"] == "1"
    assert retried.status_code == 200


async def test_each_server_process_keeps_the_configured_pool(postgresql_url: str):
    """Requests beyond the pool each open and close a connection: the pool is sized by settings."""
    settings = Settings(database_url=postgresql_url, db_pool_size=7, db_max_overflow=2, _env_file=None)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        pool = application.state.engine.pool
        assert (pool.size(), pool._max_overflow) == (7, 2)
