"""Helpers of the signal tests: webhook URLs and waiting for the broker worker."""

import asyncio
from decimal import Decimal
from typing import Any

import httpx

FINAL = ("executed", "closed", "rejected", "cancelled", "duplicate")


async def webhook_path(http: httpx.AsyncClient, account_id: int, label: str = "tradingview") -> str:
    response = await http.post(f"/api/v1/accounts/{account_id}/webhooks", json={"label": label})
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url.removeprefix("http://testserver")


async def send(http: httpx.AsyncClient, path: str, body: str, content_type: str = "text/plain") -> httpx.Response:
    return await http.post(path, content=body.encode(), headers={"content-type": content_type})


async def signal_of(http: httpx.AsyncClient, signal_id: int) -> dict[str, Any]:
    response = await http.get(f"/api/v1/signals/{signal_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def settled(http: httpx.AsyncClient, signal_id: int, timeout_s: float = 15.0) -> dict[str, Any]:
    """The signal once the broker worker has moved it out of pending."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        signal = await signal_of(http, signal_id)
        if signal["status"] != "pending":
            return signal
        assert asyncio.get_running_loop().time() < deadline, f"signal {signal_id} still pending: {signal}"
        await asyncio.sleep(0.02)


async def tick(admin: httpx.AsyncClient, symbol: str, price: str) -> None:
    response = await admin.post(f"/api/v1/instruments/{symbol}/ticks", json={"price": price})
    assert response.status_code in (200, 201), response.text


async def until_order(http: httpx.AsyncClient, order_id: int, status: str, timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (await http.get(f"/api/v1/orders/{order_id}")).json()["status"] != status:
        assert asyncio.get_running_loop().time() < deadline, f"order {order_id} never became {status}"
        await asyncio.sleep(0.02)


def holdings(books: dict[str, Any]) -> dict[str, str]:
    """Symbol to quantity of what is held (a closed position stays listed for its realised P&L)."""
    return {p["symbol"]: p["quantity"] for p in books["positions"] if Decimal(p["quantity"]) != 0}
