"""Operations: request ids, one access line per request, JSON logs, /metrics, and no secret in any log."""

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.core.config import Settings
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.core.logging import _handler
from quantdesk.signals import worker
from quantdesk.trading.models import Order
from tests.conftest import FIXTURES, http_client, make_user
from tests.integration.signal_helpers import send, settled, webhook_path
from tests.integration.trading_helpers import open_account

AV_KEY = "TESTKEY123"  # the settings fixture's Alpha Vantage key


async def test_every_answer_carries_a_request_id_and_writes_one_access_line(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO, logger="quantdesk.access"):
        given = await anonymous.get("/health", headers={"x-request-id": "edge-42.a"})
        fresh = await anonymous.get("/api/v1/instruments/NOPE", headers={"x-request-id": "not sane; " * 10})
    assert given.headers["x-request-id"] == "edge-42.a"
    assert len(fresh.headers["x-request-id"]) == 32
    lines = [r for r in caplog.records if r.name == "quantdesk.access"]
    assert [(r.method, r.path, r.status, r.request_id) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/health", 200, "edge-42.a"),
        ("GET", "/api/v1/instruments/NOPE", 404, fresh.headers["x-request-id"]),
    ]


def test_json_logs_are_one_object_per_line_with_the_request_id():
    handler = _handler("json")
    record = logging.LogRecord("quantdesk.api", logging.WARNING, __file__, 1, "GET %s", ("/webhooks/wh_abc",), None)
    handler.filter(record)
    line = handler.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "quantdesk.api"
    assert parsed["message"] == "GET /webhooks/<redacted>"
    assert parsed["request_id"] == "-"
    assert parsed["time"].endswith("+00:00")


async def test_metrics_count_requests_by_route_and_read_orders_signals_and_the_queue(
    app: FastAPI, engine: AsyncEngine, market: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    async with http_client(app, await make_user(engine, "alice")) as alice:
        account = await open_account(alice, "10000")
        path = await webhook_path(alice, account)
        accepted = await send(alice, path, "BUY ACME")
        await settled(alice, accepted.json()["signal_id"])
        await alice.get("/api/v1/orders/999999")
    text = (await anonymous.get("/metrics")).text
    assert 'quantdesk_http_requests_total{method="GET",route="/api/v1/orders/{order_id}",status="404"}' in text
    assert 'quantdesk_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/webhooks/{token}"}' in text
    assert 'quantdesk_orders{status="filled"} 1.0' in text
    assert 'quantdesk_signals{status="executed"} 1.0' in text
    assert "quantdesk_broker_queue_depth 0.0" in text
    assert "quantdesk_broker_worker_lag_seconds 0.0" in text
    assert "wh_" not in text  # routes are templates, never a token


async def test_a_private_server_wants_a_key_for_metrics(engine: AsyncEngine, database_url: str, admin_key: str):
    from quantdesk.api.app import create_app

    app = create_app(Settings(database_url=database_url, private=True, _env_file=None))
    async with app.router.lifespan_context(app):
        async with http_client(app) as anonymous:
            assert (await anonymous.get("/metrics")).status_code == 401
        async with http_client(app, admin_key) as admin:
            assert (await admin.get("/metrics")).status_code == 200


async def test_no_secret_reaches_any_log(
    app: FastAPI,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    market: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
):
    """The Alpha Vantage key (a query parameter), webhook tokens (a path) and API keys never appear,
    whatever the level, whatever the outcome."""
    caplog.set_level(logging.DEBUG)
    alice_key = await make_user(engine, "alice")
    with respx.mock(assert_all_called=False) as provider:
        provider.get("https://www.alphavantage.co/query").respond(
            200, json=json.loads((FIXTURES / "providers" / "alphavantage_time_series_daily.json").read_text())
        )
        assert (await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})).status_code == 200
        provider.get("https://www.alphavantage.co/query").respond(500)
        await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    async with http_client(app, alice_key) as alice:
        account = await open_account(alice, "1000")
        path = await webhook_path(alice, account)
        await send(alice, path, "BUY ACME")
        await send(alice, path, "not a signal at all")
        await alice.get(f"/ws?token={alice_key}")
        async with http_client(app) as stranger:
            await stranger.post(path.replace("wh_", "wh_x"), content="BUY ACME")
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    token = path.removeprefix("/webhooks/")
    for secret in (AV_KEY, token, alice_key, alice_key[3:]):
        assert secret not in logged
    assert "/webhooks/<redacted>" in logged


async def test_shutting_down_lets_the_broker_worker_end_its_transaction(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A worker cancelled inside a transaction can leave its connection behind, still in the transaction
    (on SQLite, holding the write lock for every other writer). Shutdown waits for it instead."""
    from quantdesk.api.app import create_app

    inside, ended = asyncio.Event(), []

    async def slow_execute_next(factory: Any, _settings: Settings) -> worker.Outcome:
        async with session_scope(factory, write=True) as session:
            inside.set()
            await asyncio.sleep(0.2)
            await session.execute(select(func.count()).select_from(Order))
        ended.append("committed")
        return worker.Outcome.EMPTY

    monkeypatch.setattr(worker, "execute_next", slow_execute_next)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await inside.wait()  # the lifespan ends while the worker is inside its transaction
    assert ended == ["committed"]
    async with session_scope(create_sessionmaker(engine), write=True) as session:  # no lock left behind
        await session.execute(select(func.count()).select_from(Order))
