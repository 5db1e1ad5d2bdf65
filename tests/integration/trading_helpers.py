"""Helpers of the accounts and trading tests."""

from decimal import Decimal
from typing import Any

import httpx


async def open_account(http: httpx.AsyncClient, deposit: str = "10000", **extra: object) -> int:
    response = await http.post("/api/v1/accounts", json={"name": "main", "initial_deposit": deposit, **extra})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def order(http: httpx.AsyncClient, account_id: int, **fields: object) -> httpx.Response:
    body = {"account_id": account_id, "symbol": "ACME", "side": "buy", "quantity": "1", **fields}
    return await http.post("/api/v1/orders", json=body)


async def books(http: httpx.AsyncClient, account_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Cash, the ledger's sum and the positions: what a refused request must leave unchanged."""
    account = (await http.get(f"/api/v1/accounts/{account_id}", headers=headers)).json()
    ledger = (await http.get(f"/api/v1/accounts/{account_id}/ledger?limit=10000", headers=headers)).json()
    portfolio = (await http.get(f"/api/v1/portfolio?account_id={account_id}", headers=headers)).json()[0]
    total = sum((Decimal(row["amount"]) for row in ledger), Decimal(0))
    assert Decimal(account["cash"]) == total, "cash must equal the sum of the ledger"
    return {"cash": account["cash"], "ledger_rows": len(ledger), "positions": portfolio["positions"]}
