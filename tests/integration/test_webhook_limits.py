"""Webhook limits: body size, rate per token, and the allow-list of source addresses behind a proxy."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.core.config import Settings
from tests.conftest import http_client, make_user
from tests.integration.signal_helpers import send, webhook_path
from tests.integration.trading_helpers import open_account


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A server with a small burst, a tight body limit, no dedupe window, and a webhook allow-list."""
    return Settings(
        database_url=database_url,
        webhook_rate_per_s=0.5,
        webhook_burst=3,
        webhook_max_body_kb=1,
        signal_dedupe_window_s=0,
        webhook_allowed_ips=["52.89.214.238", "10.0.0.0/8", "127.0.0.1"],
        trusted_proxies=["127.0.0.1"],
        _env_file=None,
    )


def client_from(app: FastAPI, address: str, key: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def test_limits_rate_body_size_and_source_addresses(app: FastAPI, engine: AsyncEngine, admin_key: str):
    key = await make_user(engine, "carol")
    async with http_client(app, admin_key) as admin, client_from(app, "10.1.2.3", key) as carol:
        assert (await admin.post("/api/v1/assets", json={"symbol": "ACME", "price": "100"})).status_code == 201
        account = await open_account(carol, "100000")
        path = await webhook_path(carol, account)
        too_big = await send(carol, path, "BUY ACME " + "x" * 2000)
        assert too_big.status_code == 413
        statuses = [(await send(carol, path, "BUY ACME")).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]  # the same body is no duplicate: the window is 0 here
        limited = await send(carol, path, "BUY ACME")
        assert int(limited.headers["retry-after"]) >= 1
    async with client_from(app, "203.0.113.9") as stranger:
        refused = await send(stranger, path, "BUY ACME")
        assert refused.status_code == 403
        assert "203.0.113.9" in refused.json()["detail"]
        # A forwarded address counts only from a trusted proxy: this caller is not one.
        spoofed = await stranger.post(path, content=b"BUY ACME", headers={"x-forwarded-for": "52.89.214.238"})
        assert spoofed.status_code == 403
    async with client_from(app, "127.0.0.1") as proxy:
        forwarded = await proxy.post(path, content=b"BUY ACME", headers={"x-forwarded-for": "198.51.100.7"})
        assert forwarded.status_code == 403
        assert "198.51.100.7" in forwarded.json()["detail"]
        from_tradingview = await proxy.post(
            path, content=b"BUY ACME", headers={"x-forwarded-for": "1.2.3.4, 52.89.214.238"}
        )
        assert from_tradingview.status_code in (202, 429)  # allowed through (the token's burst may be spent)
