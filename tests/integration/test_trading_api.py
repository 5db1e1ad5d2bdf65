"""Orders through the paper broker, positions and the portfolio, assets and prices, on both databases."""

import asyncio
import json
import random
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import http_client
from tests.factories import bars_as_json, make_bars
from tests.integration.trading_helpers import books, open_account, order


@pytest.fixture
def costs(app: FastAPI) -> None:
    """Commission 0.1% + 1 per fill, slippage 10 bps."""
    settings = app.state.settings
    settings.commission_pct, settings.commission_fixed, settings.slippage_bps = Decimal("0.1"), Decimal(1), Decimal(10)


async def test_a_market_buy_fills_at_once_and_returns_the_confirmation(market, alice, costs):
    account = await open_account(alice, "10000")
    response = await order(alice, account, quantity="10")
    assert response.status_code == 201, response.text
    confirmation = response.json()
    assert (confirmation["status"], confirmation["symbol"], confirmation["filled_quantity"]) == (
        "filled",
        "ACME",
        "10.00000000",
    )
    assert confirmation["filled_avg_price"] == "100.10000000"  # 10 bps of slippage against the buyer
    assert confirmation["commission"] == "2.00100000"  # 0.1% of 1001 + 1
    assert confirmation["total"] == "-1003.00100000"
    state = await books(alice, account)
    assert state["cash"] == "8996.99900000"
    [position] = state["positions"]
    assert (position["quantity"], position["avg_cost"], position["price"]) == (
        "10.00000000",
        "100.10000000",
        "100.00000000",
    )
    assert position["unrealized_pnl"] == "-1.00000000"
    kinds = [row["kind"] for row in (await alice.get(f"/api/v1/accounts/{account}/ledger")).json()]
    assert kinds == ["commission", "trade", "deposit"]
    detail = (await alice.get(f"/api/v1/orders/{confirmation['id']}")).json()
    assert [e["status"] for e in detail["events"]] == ["new", "filled"]


async def test_selling_realises_pnl_at_the_average_cost(market, alice, client):
    account = await open_account(alice, "10000")
    await order(alice, account, quantity="10")
    await client.patch("/api/v1/assets/ACME", json={"price": "110"})
    await order(alice, account, quantity="10")
    await client.patch("/api/v1/assets/ACME", json={"price": "120"})
    sold = await order(alice, account, side="sell", quantity="5")
    assert sold.json()["total"] == "600.00000000"
    [position] = (await books(alice, account))["positions"]
    assert (position["quantity"], position["avg_cost"]) == ("15.00000000", "105.00000000")
    assert position["realized_pnl"] == "75.00000000"
    assert position["market_value"] == "1800.00000000"
    portfolio = (await alice.get("/api/v1/portfolio")).json()[0]
    assert Decimal(portfolio["equity"]) == Decimal(portfolio["cash"]) + Decimal("1800")
    assert (await alice.get(f"/api/v1/accounts/{account}")).json()["equity"] == portfolio["equity"]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"quantity": "1000"}, 422, "costs 100000.00000000"),
        ({"side": "sell", "quantity": "1"}, 422, "holds 0"),
        ({"quantity": "1.5"}, 422, "whole units"),
        ({"quantity": "0"}, 422, "greater than 0"),
        ({"quantity": "-1"}, 422, "greater than 0"),
        ({"quantity": "NaN"}, 422, "quantity"),
        ({"quantity": "1.000000001"}, 422, "8 decimal places"),
        ({"symbol": "NOPE"}, 404, "NOPE"),
        ({"symbol": "NEW"}, 422, "no price yet"),
        ({"type": "limit"}, 422, "needs limit_price"),
        ({"type": "market", "stop_price": "90"}, 422, "takes no stop_price"),
        ({"take_profit": "90"}, 422, "take_profit must be above"),
        ({"stop_loss": "110"}, 422, "stop_loss must be below"),
        ({"side": "short"}, 422, "side"),
        ({"qty": "2"}, 422, "quantity or qty, not both"),
        ({"order_class": "bracket", "take_profit": {"limit_price": "120"}}, 422, "both take_profit and stop_loss"),
        ({"order_class": "simple", "stop_loss": "90"}, 422, "neither take_profit nor stop_loss"),
        ({"order_class": "oco"}, 422, "order_class"),
        ({"stop_loss": {"stop_price": "90", "limit_price": "89"}}, 422, "stop_loss is a price, or {"),
        ({"take_profit": {"price": "120"}}, 422, "got the fields price"),
    ],
)
async def test_refused_orders_change_nothing(market, client, alice, fields, status, message):
    await client.post("/api/v1/assets", json={"symbol": "NEW"})
    account = await open_account(alice, "1000")
    before = await books(alice, account)
    response = await order(alice, account, **fields)
    assert response.status_code == status, response.text
    assert message in response.text
    assert await books(alice, account) == before
    assert (await alice.get("/api/v1/orders")).json() == []


async def test_an_order_in_alpacas_shape_is_understood(market, alice):
    """qty, order_class and bracket legs as objects, as Alpaca's clients write them."""
    account = await open_account(alice, "10000")
    body = {
        "account_id": account,
        "symbol": "ACME",
        "side": "buy",
        "type": "market",
        "qty": "2",
        "time_in_force": "gtc",
        "order_class": "bracket",
        "take_profit": {"limit_price": "120"},
        "stop_loss": {"stop_price": "90"},
    }
    placed = await alice.post("/api/v1/orders", json=body)
    assert placed.status_code == 201, placed.text
    assert (placed.json()["status"], placed.json()["filled_quantity"]) == ("filled", "2.00000000")
    legs = (await alice.get(f"/api/v1/orders/{placed.json()['id']}")).json()["legs"]
    assert sorted((leg["leg"], leg["type"], leg["limit_price"], leg["stop_price"]) for leg in legs) == [
        ("stop_loss", "stop", None, "90.00000000"),
        ("take_profit", "limit", "120.00000000", None),
    ]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
async def test_a_json_body_sent_with_another_content_type_is_refused_with_what_to_change(market, alice, content_type):
    """curl -d sends a form content type: the answer says to send JSON, not that a dictionary is wanted."""
    account = await open_account(alice)
    body = json.dumps({"account_id": account, "symbol": "ACME", "side": "buy", "quantity": "1"})
    response = await alice.post("/api/v1/orders", content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert f"Content-Type: application/json, not {content_type}" in response.json()["detail"]
    assert (await alice.get("/api/v1/orders")).json() == []


async def test_fractions_where_the_asset_allows_them(market, alice):
    account = await open_account(alice, "10000")
    response = await order(alice, account, symbol="BTC", quantity="0.012345")
    assert response.json()["status"] == "filled"
    assert response.json()["total"] == "-617.25000000"


async def test_a_limit_order_rests_and_fills_when_a_tick_reaches_it(market, client, alice):
    account = await open_account(alice, "10000")
    placed = (await order(alice, account, type="limit", limit_price="95", quantity="10")).json()
    assert placed["status"] == "accepted"
    tick = await client.post("/api/v1/instruments/ACME/ticks", json={"price": "96"})
    assert tick.json()["orders_filled"] == 0
    tick = await client.post("/api/v1/instruments/ACME/ticks", json={"price": "94.5"})
    assert tick.json()["orders_filled"] == 1
    filled = (await alice.get(f"/api/v1/orders/{placed['id']}")).json()
    assert (filled["status"], filled["filled_avg_price"]) == ("filled", "94.50000000")
    assert [e["status"] for e in filled["events"]] == ["new", "accepted", "filled"]
    assert (await books(alice, account))["cash"] == "9055.00000000"


async def test_new_bars_are_price_updates_too(market, client, alice):
    account = await open_account(alice, "10000")
    placed = (await order(alice, account, type="stop", stop_price="150", quantity="1")).json()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    bars = bars_as_json(make_bars(1, start=today, seed=1))  # today's bar, still open: it ends now
    bars[0]["close"], bars[0]["high"] = 160.0, 161.0
    assert (await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars)).status_code == 200
    triggered = (await alice.get(f"/api/v1/orders/{placed['id']}")).json()
    assert triggered["status"] == "filled"
    assert triggered["filled_avg_price"] == "160.00000000"


async def test_a_bracket_exits_by_one_leg_and_cancels_the_other(market, client, alice):
    account = await open_account(alice, "10000")
    entry = (await order(alice, account, quantity="10", take_profit="110", stop_loss="95")).json()
    assert entry["status"] == "filled"
    legs = (await alice.get(f"/api/v1/orders/{entry['id']}")).json()["legs"]
    assert [(leg["leg"], leg["status"], leg["side"]) for leg in legs] == [
        ("take_profit", "accepted", "sell"),
        ("stop_loss", "accepted", "sell"),
    ]
    await client.post("/api/v1/instruments/ACME/ticks", json={"price": "94"})
    legs = (await alice.get(f"/api/v1/orders/{entry['id']}")).json()["legs"]
    assert [leg["status"] for leg in legs] == ["canceled", "filled"]
    assert legs[1]["filled_avg_price"] == "94.00000000"
    state = await books(alice, account)
    assert state["positions"][0]["quantity"] == "0.00000000"
    assert state["cash"] == "9940.00000000"


async def test_stop_limit_ioc_day_and_cancel(market, client, alice):
    account = await open_account(alice, "10000")
    ioc = (await order(alice, account, type="limit", limit_price="90", time_in_force="ioc")).json()
    assert (ioc["status"], ioc["reason"]) == ("canceled", "ioc: not marketable at 100.00000000")
    stop_limit = (await order(alice, account, type="stop_limit", stop_price="105", limit_price="106")).json()
    await client.post("/api/v1/instruments/ACME/ticks", json={"price": "107"})  # stop reached, limit not
    assert (await alice.get(f"/api/v1/orders/{stop_limit['id']}")).json()["status"] == "accepted"
    await client.post("/api/v1/instruments/ACME/ticks", json={"price": "105.5"})
    assert (await alice.get(f"/api/v1/orders/{stop_limit['id']}")).json()["status"] == "filled"
    day = (await order(alice, account, type="limit", limit_price="50", time_in_force="day")).json()
    assert day["expires_at"] is not None
    resting = (await order(alice, account, type="limit", limit_price="60")).json()
    canceled = await alice.delete(f"/api/v1/orders/{resting['id']}")
    assert canceled.json()["status"] == "canceled"
    again = await alice.delete(f"/api/v1/orders/{resting['id']}")
    assert again.status_code == 409
    open_orders = (await alice.get(f"/api/v1/orders?status=open&account_id={account}")).json()
    assert [o["id"] for o in open_orders] == [day["id"]]
    closed = (await alice.get("/api/v1/orders?status=closed")).json()
    assert {o["id"] for o in closed} == {ioc["id"], stop_limit["id"], resting["id"]}


async def test_client_order_ids_make_orders_idempotent(market, alice):
    account = await open_account(alice, "10000")
    first = await order(alice, account, quantity="3", client_order_id="abc-1")
    second = await order(alice, account, quantity="3", client_order_id="abc-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert (await books(alice, account))["positions"][0]["quantity"] == "3.00000000"


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("other", 404), ("admin", 200), ("anonymous", 401)])
async def test_who_may_read_an_order(market, client, alice, bob, anonymous, who, status):
    account = await open_account(alice)
    placed = (await order(alice, account)).json()
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    assert (await caller.get(f"/api/v1/orders/{placed['id']}")).status_code == status
    listed = await caller.get("/api/v1/orders")
    if status == 200:
        assert [o["id"] for o in listed.json()] == [placed["id"]]
    elif who == "other":
        assert listed.json() == []


@pytest.mark.parametrize(("who", "status"), [("owner", 201), ("other", 404), ("admin", 403), ("anonymous", 401)])
async def test_only_the_owner_trades(market, client, alice, bob, anonymous, who, status):
    account = await open_account(alice)
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    assert (await order(caller, account)).status_code == status


async def test_assets_are_managed_by_admins_and_kept_while_held(market, client, alice):
    assert (await alice.post("/api/v1/assets", json={"symbol": "ZZZ"})).status_code == 403
    assert (await alice.post("/api/v1/instruments/ACME/ticks", json={"price": "1"})).status_code == 403
    renamed = await client.patch("/api/v1/assets/BTC", json={"symbol": "XBT", "price": "60000"})
    assert (renamed.json()["symbol"], renamed.json()["price"], renamed.json()["price_source"]) == (
        "XBT",
        "60000.00000000",
        "admin",
    )
    account = await open_account(alice)
    await order(alice, account)
    refused = await client.delete("/api/v1/assets/ACME")
    assert refused.status_code == 409
    assert "held by 1 account" in refused.json()["detail"]
    await order(alice, account, side="sell")
    assert (await client.delete("/api/v1/assets/ACME")).status_code == 204
    assert [a["symbol"] for a in (await alice.get("/api/v1/assets")).json()] == ["XBT"]


async def test_a_reset_restores_the_opening_deposit_and_keeps_the_history(market, alice):
    account = await open_account(alice, "5000")
    await order(alice, account, quantity="10")
    resting = (await order(alice, account, type="limit", limit_price="50")).json()
    reset = (await alice.post(f"/api/v1/accounts/{account}/reset")).json()
    assert (reset["cash"], reset["generation"]) == ("5000.00000000", 1)
    state = await books(alice, account)
    assert state["positions"] == []
    assert (await alice.get(f"/api/v1/orders/{resting['id']}")).json()["status"] == "canceled"
    ledger = (await alice.get(f"/api/v1/accounts/{account}/ledger")).json()
    assert ledger[0]["kind"] == "reset"
    assert len((await alice.get("/api/v1/orders")).json()) == 2  # history kept


async def test_two_hundred_concurrent_buys_with_cash_for_one_hundred(market, app, engine, alice):
    """Exactly 100 fill, cash never goes negative, and the ledger sums to the cash, on both databases."""
    account = await open_account(alice, "10000")  # 100 buys of one ACME at 100
    key = alice.headers["authorization"].split()[1]
    clients = [http_client(app, key) for _ in range(8)]
    try:
        responses = await asyncio.gather(
            *(order(clients[i % len(clients)], account, client_order_id=f"c{i}") for i in range(200))
        )
    finally:
        for c in clients:
            await c.aclose()
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 100, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(422) == 100
    assert all("costs 100.00000000" in r.text for r in responses if r.status_code == 422)
    state = await books(alice, account)
    assert state["cash"] == "0.00000000"
    assert state["positions"][0]["quantity"] == "100.00000000"
    ledger = (await alice.get(f"/api/v1/accounts/{account}/ledger?limit=10000")).json()
    assert all(Decimal(row["balance"]) >= 0 for row in ledger)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("owner", (200, 200, 200, 200)),
        ("other", (404, 404, 404, 404)),
        ("admin", (200, 403, 403, 200)),
        ("anonymous", (401, 401, 401, 401)),
    ],
)
async def test_access_to_portfolio_cancel_reset_and_user(market, client, alice, bob, anonymous, who, expected):
    """(portfolio of the account, cancel its order, reset it, read its owner) for each kind of caller."""
    account = await open_account(alice)
    resting = (await order(alice, account, type="limit", limit_price="50")).json()
    owner_id = (await alice.get("/api/v1/users/me")).json()["id"]
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    statuses = (
        (await caller.get(f"/api/v1/portfolio?account_id={account}")).status_code,
        (await caller.delete(f"/api/v1/orders/{resting['id']}")).status_code,
        (await caller.post(f"/api/v1/accounts/{account}/reset")).status_code,
        (await caller.get(f"/api/v1/users/{owner_id}")).status_code,
    )
    assert statuses == expected


async def test_a_triggered_order_without_the_cash_is_rejected_and_the_rest_still_fill(market, client, alice):
    account = await open_account(alice, "1000")
    first = (await order(alice, account, type="limit", limit_price="90", quantity="10")).json()
    second = (await order(alice, account, type="limit", limit_price="90", quantity="5")).json()
    tick = await client.post("/api/v1/instruments/ACME/ticks", json={"price": "80"})
    assert tick.json()["orders_filled"] == 1
    assert (await alice.get(f"/api/v1/orders/{first['id']}")).json()["status"] == "filled"
    refused = (await alice.get(f"/api/v1/orders/{second['id']}")).json()
    assert refused["status"] == "rejected"
    assert "costs 400.00000000" in refused["reason"]
    state = await books(alice, account)
    assert state["cash"] == "200.00000000"


async def test_random_operations_keep_cash_positions_and_fills_consistent(market, client, alice):
    """Seeded random deposits, withdrawals, orders of every type and price moves: after each one, cash is
    the ledger's sum and every position's quantity is the sum of its fills."""
    rng = random.Random(6)
    account = await open_account(alice, "20000", allow_short=True)
    price = Decimal(100)
    for _ in range(60):
        action = rng.choice(["deposit", "withdraw", "market", "limit", "stop", "tick", "cancel"])
        if action == "deposit":
            await alice.post(f"/api/v1/accounts/{account}/deposit", json={"amount": str(rng.randint(1, 500))})
        elif action == "withdraw":
            await alice.post(f"/api/v1/accounts/{account}/withdraw", json={"amount": str(rng.randint(1, 3000))})
        elif action == "tick":
            price = max(Decimal(5), price + Decimal(rng.randint(-8, 8)))
            await client.post("/api/v1/instruments/ACME/ticks", json={"price": str(price)})
        elif action == "cancel":
            open_orders = (await alice.get("/api/v1/orders?status=open")).json()
            if open_orders:
                await alice.delete(f"/api/v1/orders/{rng.choice(open_orders)['id']}")
        else:
            offset = Decimal(rng.randint(-5, 5))
            fields: dict[str, object] = {"side": rng.choice(["buy", "sell"]), "quantity": str(rng.randint(1, 20))}
            if action == "limit":
                fields |= {"type": "limit", "limit_price": str(price + offset)}
            elif action == "stop":
                fields |= {
                    "type": "stop",
                    "stop_price": str(price + (abs(offset) + 1) * (1 if fields["side"] == "buy" else -1)),
                }
            response = await order(alice, account, **fields)
            assert response.status_code in (201, 422), response.text
        state = await books(alice, account)  # asserts cash == the ledger's sum
        orders = (await alice.get("/api/v1/orders?status=filled&limit=1000")).json()
        held = sum((Decimal(o["filled_quantity"]) * (1 if o["side"] == "buy" else -1) for o in orders), Decimal(0))
        quantity = Decimal(state["positions"][0]["quantity"]) if state["positions"] else Decimal(0)
        assert quantity == held


async def test_regression_an_order_worth_10_to_the_20_is_refused_by_name_and_changes_nothing(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    huge = await market.post("/api/v1/assets", json={"symbol": "HUGE", "price": "999999999999"})
    assert huge.status_code == 201, huge.text
    account = await open_account(alice, "999999999999")
    before = await books(alice, account)
    for fields in (
        {"quantity": "999999999"},
        {"type": "limit", "limit_price": "999999999999", "quantity": "99999999999"},
    ):
        refused = await order(alice, account, symbol="HUGE", **fields)
        assert refused.status_code == 422, refused.text
        assert "must stay below 10^20" in refused.json()["detail"]
    assert await books(alice, account) == before
    assert (await order(alice, account, symbol="HUGE")).status_code == 201


async def test_regression_times_without_an_offset_are_read_as_utc(market: httpx.AsyncClient, alice: httpx.AsyncClient):
    account = await open_account(alice)
    assert (await order(alice, account)).status_code == 201
    for path, expected in (
        ("/api/v1/orders?since=2020-01-01", 1),
        ("/api/v1/orders?since=2020-01-01T00:00:00&until=9999-12-31T23:59:59", 1),
        ("/api/v1/orders?since=9999-01-01T00:00", 0),
        ("/api/v1/signals?since=2020-01-01", 0),
    ):
        response = await alice.get(path)
        assert response.status_code == 200, (path, response.text)
        assert len(response.json()) == expected, (path, response.json())
    analytics = await alice.get("/api/v1/analytics/trading?start=2020-01-01&end=2030-01-01T12:00")
    assert analytics.status_code == 200, analytics.text
    too_late = await alice.get("/api/v1/orders?since=9999-12-31T23:59:59-01:00")
    assert too_late.status_code == 422
    assert "outside years 1 to 9999 in UTC" in too_late.text


async def test_short_sales_and_withdrawals_keep_half_the_short_value_as_equity(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    """Reg T's 150%: the proceeds and half as much again of the account's own equity."""
    account = await open_account(alice, "10000", allow_short=True)
    assert (await order(alice, account, side="sell", quantity="100")).status_code == 201  # short 10,000
    too_much = await order(alice, account, side="sell", quantity="150")  # short 25,000 against equity 10,000
    assert too_much.status_code == 422, too_much.text
    assert "at least 50% of the short market value" in too_much.json()["detail"]
    assert (await order(alice, account, side="sell", quantity="100")).status_code == 201  # short 20,000: just
    before = await books(alice, account)
    assert before["cash"] == "30000.00000000"
    withdrawal = await alice.post(f"/api/v1/accounts/{account}/withdraw", json={"amount": "1"})
    assert withdrawal.status_code == 422, withdrawal.text
    assert "need equity of 10000.00000000" in withdrawal.json()["detail"]
    assert await books(alice, account) == before
    assert (await order(alice, account, side="buy", quantity="200")).status_code == 201  # covered
    assert (await alice.post(f"/api/v1/accounts/{account}/withdraw", json={"amount": "10000"})).status_code == 200


async def test_regression_a_huge_short_cannot_leave_equity_below_zero(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "1000", allow_short=True)
    huge = await order(alice, account, side="sell", quantity="9999999999")
    assert huge.status_code == 422, huge.text
    short = await order(alice, account, side="sell", quantity="10")
    assert short.status_code == 201
    withdrawal = await alice.post(f"/api/v1/accounts/{account}/withdraw", json={"amount": "1999"})
    assert withdrawal.status_code == 422
    account_row = (await alice.get(f"/api/v1/accounts/{account}")).json()
    assert account_row["equity"] == "1000.00000000"
