"""Who the leaderboard lists, and that no stored trade can break it for everyone."""

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from quantdesk.trading.models import Fill
from tests.factories import bars_as_json, make_bars
from tests.integration.trading_helpers import open_account, order


async def listed(http: httpx.AsyncClient, by: str = "gems") -> list[str]:
    response = await http.get(f"/api/v1/leaderboard?by={by}&top=100")
    assert response.status_code == 200, response.text
    return [row["username"] for row in response.json()]


async def test_admins_and_users_without_an_account_are_not_competitors(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    await open_account(alice)
    assert await listed(alice) == ["alice"]  # not the admin (market), not bob (no account yet)
    await open_account(bob)
    assert await listed(alice) == ["alice", "bob"]


async def test_a_trade_whose_cost_was_zero_leaves_its_ratio_undefined_not_the_board_broken(
    app: FastAPI, market: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    """Before prices of 0 were refused, a buy could fill for nothing: its sale has no cost to divide by."""
    account = await open_account(alice)
    assert (await order(alice, account, quantity="2")).status_code == 201
    sold = await order(alice, account, side="sell", quantity="2")
    assert sold.status_code == 201, sold.text
    async with app.state.sessionmaker() as session, session.begin():
        # The sale as such a trade left it: sold at 100 what cost 0, so all of it is profit.
        await session.execute(update(Fill).where(Fill.side == "sell").values(realized_pnl=Decimal(200)))
    for by in ("gems", "return_pct", "sharpe"):
        assert await listed(alice, by) == ["alice"]
    assert (await anonymous.get("/dashboard/leaderboard?by=sharpe")).status_code == 200


async def test_a_price_that_rounds_to_zero_is_refused_for_trading(market: httpx.AsyncClient):
    tick = await market.post("/api/v1/instruments/ACME/ticks", json={"price": "0.000000004"})
    assert tick.status_code == 422, tick.text
    rows = [row | {"low": 0.000000004, "close": 0.000000004} for row in bars_as_json(make_bars(3))]
    stored = await market.post("/api/v1/instruments/ACME/bars", json=rows)
    assert stored.status_code == 422, stored.text
    assert "rounds to 0 at 8 decimal places" in stored.json()["detail"]
    assert (await market.get("/api/v1/instruments/ACME/bars")).status_code == 404  # no bars stored
    assets = (await market.get("/api/v1/assets")).json()
    assert next(asset["price"] for asset in assets if asset["symbol"] == "ACME") == "100.00000000"


async def test_return_is_time_weighted_so_withdrawals_cannot_game_the_board(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    """Alice makes 0.0089 on 10,000 and withdraws nearly everything; Bob makes 1% and keeps his money."""
    gamer, honest = await open_account(alice), await open_account(bob)
    for client, account in ((alice, gamer), (bob, honest)):
        assert (await order(client, account, quantity="1")).status_code == 201  # ACME at 100
    await market.post("/api/v1/instruments/ACME/ticks", json={"price": "100.0089"})
    assert (await order(alice, gamer, side="sell", quantity="1")).status_code == 201
    withdrawn = await alice.post(f"/api/v1/accounts/{gamer}/withdraw", json={"amount": "9999.99"})
    assert withdrawn.status_code == 200, withdrawn.text
    await market.post("/api/v1/instruments/ACME/ticks", json={"price": "200"})  # Bob's share doubles: +100 on 10,000
    board = (await alice.get("/api/v1/leaderboard?by=return_pct")).json()
    returns = {row["username"]: (row["rank"], row["return_pct"]) for row in board}
    assert returns["bob"][0] == 1
    assert returns["bob"][1] == pytest.approx(1.0)
    assert returns["alice"][0] == 2
    assert returns["alice"][1] == pytest.approx(0.000089, rel=1e-3)
    ledger = (await alice.get(f"/api/v1/accounts/{gamer}/ledger")).json()
    flows = {row["kind"]: row.get("equity_before") for row in ledger if row["kind"] in ("deposit", "withdrawal")}
    assert flows == {"deposit": "0.00000000", "withdrawal": "10000.00890000"}
