"""Signals trade a paper account end to end: webhook -> order -> fill -> close on SL/TP -> analytics."""

import json
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.core.config import Settings
from quantdesk.trading.models import Position
from tests.integration.signal_helpers import holdings, send, settled, signal_of, tick, until_order, webhook_path
from tests.integration.trading_helpers import books, open_account


async def test_a_text_signal_opens_a_trade_that_its_take_profit_closes(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "10000")
    path = await webhook_path(alice, account)
    received = await send(alice, path, "BUY ACME\nSL 90\nTP 110")
    assert received.status_code == 202, received.text
    signal_id = received.json()["signal_id"]
    assert received.json()["status"] == "pending"

    executed = await settled(alice, signal_id)
    assert executed["status"] == "executed", executed
    assert (executed["entry_price"], executed["quantity"]) == ("100.00000000", None)
    entry = (await alice.get(f"/api/v1/orders/{executed['order_id']}")).json()
    assert (entry["status"], entry["source"], entry["quantity"]) == ("filled", "signal", "1.00000000")
    assert sorted(leg["leg"] for leg in entry["legs"]) == ["stop_loss", "take_profit"]
    assert all(leg["status"] == "accepted" for leg in entry["legs"])

    await tick(market, "ACME", "109")  # below the target: nothing happens
    assert (await signal_of(alice, signal_id))["status"] == "executed"
    await tick(market, "ACME", "111")  # through it: the take-profit sells at the market, better than its limit
    closed = await signal_of(alice, signal_id)
    assert closed["status"] == "closed", closed
    assert (closed["exit_price"], closed["realized_pnl"]) == ("111.00000000", "11.00000000")
    assert [e["status"] for e in closed["events"]] == ["pending", "executed", "closed"]
    assert "take-profit hit" in closed["reason"]
    legs = (await alice.get(f"/api/v1/orders/{executed['order_id']}")).json()["legs"]
    assert {leg["leg"]: leg["status"] for leg in legs} == {"take_profit": "filled", "stop_loss": "canceled"}
    state = await books(alice, account)
    assert holdings(state) == {}
    assert Decimal(state["cash"]) == Decimal("10011")


@pytest.mark.parametrize(
    ("message", "stop_loss", "take_profit"),
    [
        ("60123456789,buy,ACME,risk=1,sl_points=5,tp_pct=7.5,betrigger=10", "95.00000000", "107.50000000"),
        ('{"action": "buy", "ticker": "ACME", "sl": "2%", "tp_pips": 20000}', "98.00000000", "102.00000000"),
        # The unit as a word of its own: 5 points under the price, never a stop at 5.
        ("BUY ACME SL 5 points TP 2 %", "95.00000000", "102.00000000"),
        ("BUY ACME SL: 3 pts TP 4 pts", "97.00000000", "104.00000000"),
    ],
)
async def test_distances_become_bracket_prices_from_the_last_price(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, message: str, stop_loss: str, take_profit: str
):
    account = await open_account(alice, "10000")
    signal = await settled(alice, (await send(alice, await webhook_path(alice, account), message)).json()["signal_id"])
    assert signal["status"] == "executed", signal
    legs = (await alice.get(f"/api/v1/orders/{signal['order_id']}")).json()["legs"]
    prices = {leg["leg"]: leg["stop_price"] or leg["limit_price"] for leg in legs}
    assert prices == {"stop_loss": stop_loss, "take_profit": take_profit}


async def test_distances_are_priced_again_from_the_fill_when_slippage_moved_it(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, settings: Settings
):
    settings.slippage_bps = Decimal(100)  # a market buy at 100 fills at 101
    account = await open_account(alice, "10000")
    message = "BUY ACME SL 5 points TP 2 % 4 %"
    signal = await settled(alice, (await send(alice, await webhook_path(alice, account), message)).json()["signal_id"])
    assert (signal["status"], signal["entry_price"]) == ("executed", "101.00000000"), signal
    legs = (await alice.get(f"/api/v1/orders/{signal['order_id']}")).json()["legs"]
    prices = {leg["leg"]: leg["stop_price"] or leg["limit_price"] for leg in legs}
    assert prices == {"stop_loss": "96.00000000", "take_profit": "103.02000000"}  # from 101, not from 100
    assert (signal["stop_loss"], signal["take_profit"]) == ("96.00000000", ["103.02000000", "105.04000000"])


async def test_tradingview_strategy_json_opens_and_a_flat_position_closes(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "10000")
    path = await webhook_path(alice, account)
    opening = {"action": "buy", "ticker": "ACME", "contracts": "3", "price": "100", "market_position": "long"}
    first = await send(alice, path, json.dumps(opening), "application/json")
    assert first.status_code == 202, first.text
    assert (await settled(alice, first.json()["signal_id"]))["status"] == "executed"
    await tick(market, "ACME", "95")
    # TradingView's default strategy text, sent as text/plain: a new position of 0 closes.
    closing = await send(alice, path, "MA cross: order sell @ 3 filled on ACME. New strategy position is 0")
    assert closing.status_code == 202, closing.text
    close_signal = await settled(alice, closing.json()["signal_id"])
    assert (close_signal["status"], close_signal["side"]) == ("executed", "close"), close_signal
    trade = await signal_of(alice, first.json()["signal_id"])
    assert (trade["status"], trade["exit_price"], trade["realized_pnl"]) == ("closed", "95.00000000", "-15.00000000")
    assert f"closed by signal {close_signal['id']}" in trade["reason"]
    assert holdings(await books(alice, account)) == {}


async def test_a_close_fill_leaves_every_other_open_order_alone(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    """A close order has no bracket siblings; its fill once canceled every open order without a parent,
    other traders' included, and left their signals pending for ever (found by benchmarks/soak.py)."""
    bob_account = await open_account(bob, "10000")
    limit = {"account_id": bob_account, "symbol": "ACME", "side": "buy", "type": "limit", "quantity": "1"}
    resting = (await bob.post("/api/v1/orders", json={**limit, "limit_price": "50"})).json()
    account = await open_account(alice, "10000")
    own_resting = (
        await alice.post("/api/v1/orders", json={**limit, "account_id": account, "limit_price": "60"})
    ).json()
    path = await webhook_path(alice, account)
    opened = await send(alice, path, "BUY ACME")
    assert (await settled(alice, opened.json()["signal_id"]))["status"] == "executed"
    closing = await send(alice, path, "order sell @ 1 filled on ACME. New strategy position is 0")
    assert (await settled(alice, closing.json()["signal_id"]))["status"] == "executed"
    assert (await bob.get(f"/api/v1/orders/{resting['id']}")).json()["status"] == "accepted"
    assert (await alice.get(f"/api/v1/orders/{own_resting['id']}")).json()["status"] == "accepted"


async def test_an_opposite_signal_closes_the_long_and_opens_no_short_on_a_long_only_account(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "10000")
    path = await webhook_path(alice, account)
    long = await settled(alice, (await send(alice, path, "buy ACME qty 2")).json()["signal_id"])
    assert long["status"] == "executed"
    await tick(market, "ACME", "104")
    short = await settled(alice, (await send(alice, path, "SELL ACME")).json()["signal_id"])
    # It closed the long and can do nothing more: it ends closed, with no P&L of its own (the trade it
    # closed has it), and is neither an open trade nor something to close.
    assert (short["status"], short["realized_pnl"]) == ("closed", None), short
    assert "opened no short" in short["reason"]
    assert short["close_order_id"] is not None
    trade = await signal_of(alice, long["id"])
    assert (trade["status"], trade["realized_pnl"]) == ("closed", "8.00000000")
    assert holdings(await books(alice, account)) == {}
    stats = (await alice.get(f"/api/v1/analytics/trading?account_id={account}")).json()
    assert (stats["open_trades"], stats["closed_trades"], stats["wins"]) == (0, 1, 1), stats
    again = await alice.post(f"/api/v1/signals/{short['id']}/close")
    assert again.status_code == 409, again.text
    assert "only an executed signal's open trade can be closed" in again.json()["detail"]


async def test_an_opposite_signal_reverses_an_account_that_may_sell_short(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "10000", allow_short=True)
    path = await webhook_path(alice, account)
    long = await settled(alice, (await send(alice, path, "BUY ACME")).json()["signal_id"])
    short = await settled(alice, (await send(alice, path, "SELL ACME qty 2")).json()["signal_id"])
    assert short["status"] == "executed", short
    assert (await signal_of(alice, long["id"]))["status"] == "closed"
    assert holdings(await books(alice, account)) == {"ACME": "-2.00000000"}


async def test_a_signal_the_account_cannot_pay_for_is_rejected_with_the_reason(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine
):
    account = await open_account(alice, "50")
    path = await webhook_path(alice, account)
    signal = await settled(alice, (await send(alice, path, "BUY ACME")).json()["signal_id"])
    assert signal["status"] == "rejected", signal
    assert "costs 100" in signal["reason"]
    order = (await alice.get(f"/api/v1/orders/{signal['order_id']}")).json()
    assert order["status"] == "rejected"
    assert (await books(alice, account))["cash"] == "50.00000000"
    async with engine.connect() as connection:  # not even an empty position row is left behind
        positions = await connection.scalar(select(func.count()).where(Position.account_id == account))
    assert positions == 0


async def test_a_limit_signal_rests_and_its_owner_can_cancel_it(market: httpx.AsyncClient, alice: httpx.AsyncClient):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    signal_id = (await send(alice, path, "BUY LIMIT ACME @ 95 SL 90 TP 120")).json()["signal_id"]
    order_id = (await signal_of(alice, signal_id))["order_id"]
    await until_order(alice, order_id, "accepted")  # the broker rested it: the market is above the limit
    assert (await signal_of(alice, signal_id))["status"] == "pending"
    cancelled = await alice.post(f"/api/v1/signals/{signal_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = await alice.post(f"/api/v1/signals/{signal_id}/cancel")
    assert again.status_code == 409


async def test_a_buy_stop_signal_waits_for_the_price_to_rise_through_it(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    signal_id = (await send(alice, path, "BUY STOP ACME @ 105 SL 98 TP 120")).json()["signal_id"]
    order_id = (await signal_of(alice, signal_id))["order_id"]
    await until_order(alice, order_id, "accepted")  # at 100 the stop is not reached: it rests
    order = (await alice.get(f"/api/v1/orders/{order_id}")).json()
    assert (order["type"], order["stop_price"]) == ("stop", "105.00000000")
    await tick(market, "ACME", "104")
    assert (await signal_of(alice, signal_id))["status"] == "pending"
    await tick(market, "ACME", "106")
    executed = await settled(alice, signal_id)
    assert (executed["status"], executed["entry_price"]) == ("executed", "106.00000000"), executed
    assert holdings(await books(alice, account)) == {"ACME": "1.00000000"}


async def test_the_owner_closes_an_open_trade_at_the_market(market: httpx.AsyncClient, alice: httpx.AsyncClient):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    trade = await settled(alice, (await send(alice, path, "BUY ACME qty 4")).json()["signal_id"])
    await tick(market, "ACME", "101.5")
    closed = await alice.post(f"/api/v1/signals/{trade['id']}/close")
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["realized_pnl"]) == ("closed", "6.00000000")
    assert (await alice.post(f"/api/v1/signals/{trade['id']}/close")).status_code == 409
    assert holdings(await books(alice, account)) == {}


async def test_analytics_report_win_rate_profit_factor_and_pnl_by_symbol(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    account = await open_account(alice, "1000000")
    path = await webhook_path(alice, account)
    for exit_price in ("110", "96", "103"):
        trade = await settled(alice, (await send(alice, path, f"BUY ACME # {exit_price}")).json()["signal_id"])
        await tick(market, "ACME", exit_price)
        assert (await alice.post(f"/api/v1/signals/{trade['id']}/close")).status_code == 200
        await tick(market, "ACME", "100")
    await send(alice, path, "BUY NOTHING")  # no such instrument: rejected
    stats = (await alice.get("/api/v1/analytics/trading")).json()
    assert stats["signals"] == 4
    assert stats["rejected"] == 1
    assert stats["closed_trades"] == 3
    assert (stats["wins"], stats["losses"]) == (2, 1)
    assert abs(stats["win_rate"] - 2 / 3) < 1e-9
    assert (stats["average_win"], stats["average_loss"]) == ("6.50000000", "-4.00000000")
    assert stats["profit_factor"] == 13 / 4
    assert stats["total_pnl"] == "9.00000000"
    assert [row["symbol"] for row in stats["by_symbol"]] == ["ACME", "NOTHING"]
    assert (await alice.get("/api/v1/analytics/trading?symbol=acme")).json()["signals"] == 3
    # Bob sees nothing of Alice's, and not her account either.
    assert (await bob.get("/api/v1/analytics/trading")).json()["signals"] == 0
    for wrong in ("0", "-2251799813685248", "99999999999999999999"):  # ids past any stored one: 422, never a 500
        assert (await alice.get(f"/api/v1/analytics/trading?account={wrong}")).status_code == 422
    assert (await bob.get(f"/api/v1/analytics/trading?account={account}")).status_code == 404


async def test_an_order_the_broker_cannot_execute_is_rejected_not_retried_for_ever(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("quantdesk.trading.broker.execute", broken)
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    signal = await settled(alice, (await send(alice, path, "BUY ACME")).json()["signal_id"])
    assert signal["status"] == "rejected"
    assert signal["reason"] == "the broker could not execute it (RuntimeError)"
    assert (await books(alice, account))["cash"] == "10000.00000000"


async def test_a_reset_ends_open_trades_and_cancels_pending_signals(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    trade = await settled(alice, (await send(alice, path, "BUY ACME")).json()["signal_id"])
    waiting = (await send(alice, path, "BUY LIMIT ACME @ 90")).json()["signal_id"]
    await until_order(alice, (await signal_of(alice, waiting))["order_id"], "accepted")
    assert (await alice.post(f"/api/v1/accounts/{account}/reset")).status_code == 200
    ended = await signal_of(alice, trade["id"])
    assert (ended["status"], ended["reason"], ended["realized_pnl"]) == ("closed", "the account was reset", None)
    assert (await signal_of(alice, waiting))["status"] == "cancelled"
