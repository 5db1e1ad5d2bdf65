"""Fixtures of the trading-side integration tests: assets with prices and two signed-in traders."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import http_client, make_user


@pytest.fixture
async def market(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """ACME (a stock, whole units) at 100 and BTC (crypto, fractional) at 50,000, priced by the admin."""
    for body in (
        {"symbol": "ACME", "asset_class": "stock", "price": "100"},
        {"symbol": "BTC", "asset_class": "crypto", "price": "50000"},
    ):
        response = await client.post("/api/v1/assets", json=body)
        assert response.status_code == 201, response.text
    return client


@pytest.fixture
async def alice(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, await make_user(engine, "alice")) as http:
        yield http


@pytest.fixture
async def bob(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, await make_user(engine, "bob")) as http:
        yield http
