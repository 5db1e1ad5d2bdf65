"""Schemathesis against the OpenAPI schema, on a real server over HTTP: whatever a client sends, no
answer is a 5xx and every answer matches the schema (problem bodies included).

A bounded budget: QUANTDESK_SCHEMA_EXAMPLES requests per operation (20 by default; CI's figure). The
server holds the demo's daily bars, two admins and a trader with an account and a webhook token.
"""

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from quantdesk.accounts import service as accounts
from quantdesk.api.app import create_app
from quantdesk.core import migrate
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import create_engine, create_sessionmaker, session_scope
from quantdesk.market import demo
from quantdesk.signals import tokens
from tests.conftest import POSTGRES_URL, drop_postgres_database, recreate_postgres_database
from tests.e2e.servers import ServerProcess, free_port

EXAMPLES = int(os.environ.get("QUANTDESK_SCHEMA_EXAMPLES", "20"))
# Operations that could lock the driving admin out (disable the user, revoke the key) use a second admin.
SELF_HARM = {("PATCH", "/api/v1/users/{user_id}"), ("DELETE", "/api/v1/keys/{key_id}")}
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())


@dataclass(frozen=True)
class Target:
    url: str
    admin: str
    spare_admin: str


async def _seed(url: str) -> tuple[str, str]:
    engine = create_engine(url)
    try:
        async with session_scope(create_sessionmaker(engine), write=True) as session:
            await demo.load_demo(session, utcnow().date(), False)
            _, admin = await accounts.create_user(session, "root", role="admin")
            _, spare = await accounts.create_user(session, "spare", role="admin")
            trader, _ = await accounts.create_user(session, "alice")
            account = await accounts.open_account(session, trader, "main", "USD", Decimal(10_000))
            await tokens.create(session, account, "tv")
        return admin, spare
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("schema")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'schema.db'}"
    else:
        if not POSTGRES_URL:
            pytest.skip("QUANTDESK_TEST_POSTGRES_URL is not set")
        url = recreate_postgres_database(POSTGRES_URL, f"quantdesk_schema_{os.getpid()}")
    migrate.upgrade(url)
    admin, spare = asyncio.run(_seed(url))
    closed = f"http://127.0.0.1:{free_port()}"  # providers fail at once: no internet, no waiting
    server = ServerProcess(
        url,
        Path(folder / "server.log"),
        settings={
            "alphavantage_base_url": f"{closed}/query",
            "coingecko_base_url": closed,
            "provider_max_retries": "0",
            "provider_timeout_s": "2",
            "webhook_rate_per_s": "0",
        },
    )
    try:
        yield Target(server.url, admin, spare)
    finally:
        server.stop()
        if request.param == "postgresql" and POSTGRES_URL:
            drop_postgres_database(POSTGRES_URL, f"quantdesk_schema_{os.getpid()}")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_server_error_or_breaks_the_schema(case: schemathesis.Case, target: Target) -> None:  # type: ignore[type-arg]
    key = target.spare_admin if (case.method.upper(), case.path) in SELF_HARM else target.admin
    headers = {"Authorization": f"Bearer {key}"}
    case.call_and_validate(
        base_url=target.url, headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=30
    )


def test_the_schema_describes_every_refusal_as_a_problem() -> None:
    document = create_app(Settings(_env_file=None)).openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("422", "4XX"):
                refusal = operation["responses"][status]["content"]["application/json"]["schema"]
                assert refusal == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
