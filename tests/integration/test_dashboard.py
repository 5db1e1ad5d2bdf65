"""The dashboard over HTTP: who sees what, sign-in cookies, CSRF-safe forms, and forms that fail cleanly.

The browser tests (tests/e2e/test_dashboard.py) click through the same pages in Chromium.
"""

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from quantdesk.accounts.models import Account, LedgerEntry
from quantdesk.backtest.models import SweepRun
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.market import demo
from quantdesk.trading.models import Order
from quantdesk.web.session import COOKIE
from tests.conftest import http_client, make_user
from tests.integration.live import serving
from tests.integration.signal_helpers import send, settled, webhook_path
from tests.integration.test_realtime import receive
from tests.integration.trading_helpers import open_account

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]*)"')


def browser(app: FastAPI, key: str | None = None) -> httpx.AsyncClient:
    """A client that behaves like a signed-in browser: the key in the cookie, never in a header."""
    client = http_client(app)
    if key:
        client.cookies.set(COOKIE, key)
    return client


async def form_token(client: httpx.AsyncClient, page: str) -> str:
    response = await client.get(page)
    assert response.status_code == 200, response.text
    found = CSRF.search(response.text)
    assert found, f"no form token on {page}"
    assert found.group(1), f"an empty form token on {page}"
    return found.group(1)


@pytest.fixture
async def demo_bars(engine: AsyncEngine) -> None:
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        await demo.load_demo(session, utcnow().date(), False)


@pytest.fixture
async def alice_key(engine: AsyncEngine) -> str:
    return await make_user(engine, "alice")


@pytest.fixture
async def alice(app: FastAPI, alice_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app, alice_key) as client:
        yield client


@pytest.fixture
async def alice_account(app: FastAPI, alice_key: str) -> int:
    async with http_client(app, alice_key) as api:
        return await open_account(api, "1000")


async def cash_of(engine: AsyncEngine, account_id: int) -> tuple[Decimal, Decimal]:
    """The account's cash and the sum of its ledger."""
    async with create_sessionmaker(engine)() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        total = await session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == account_id))
        return account.cash, total or Decimal(0)


# Reading ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo_bars")
async def test_market_and_research_pages_are_public_and_account_pages_ask_to_sign_in(anonymous: httpx.AsyncClient):
    for page in (
        "/dashboard",
        "/dashboard/markets/ACME",
        "/dashboard/backtests",
        "/dashboard/forecasts",
        "/dashboard/signals",
        "/dashboard/leaderboard",
        "/dashboard/signin",
    ):
        response = await anonymous.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
    markets = await anonymous.get("/dashboard")
    assert "/dashboard/markets/EURUSD" in markets.text
    assert "Sign in" in markets.text
    for page in ("/dashboard/accounts", "/dashboard/accounts/1", "/dashboard/accounts/1/live"):
        response = await anonymous.get(page)
        assert response.status_code == 303
        assert response.headers["location"] == f"/dashboard/signin?next={page}"


@pytest.mark.usefixtures("demo_bars")
async def test_the_instrument_page_draws_candles_with_the_chosen_indicators_and_says_what_is_wrong(
    anonymous: httpx.AsyncClient,
):
    page = await anonymous.get("/dashboard/markets/acme", params={"ind": ["ema:20", "rsi:14"], "range": "1y"})
    assert page.status_code == 200
    assert '"type":"candlestick"' in page.text
    assert '"name":"ema_20"' in page.text
    assert '"name":"rsi_14"' in page.text
    assert "sma_20" not in page.text
    assert "Annualised volatility" in page.text
    wrong = await anonymous.get("/dashboard/markets/ACME", params={"extra": "wobble:3"})
    assert wrong.status_code == 422
    assert "unknown indicator &#39;wobble&#39;" in wrong.text
    missing = await anonymous.get("/dashboard/markets/NOPE")
    assert missing.status_code == 404
    assert "no instrument &#39;NOPE&#39;" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    api = await anonymous.get("/api/v1/instruments/NOPE")
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"


async def test_a_private_server_asks_to_sign_in_for_every_page(engine: AsyncEngine, database_url: str):
    from quantdesk.api.app import create_app

    app = create_app(Settings(database_url=database_url, private=True, _env_file=None))
    async with app.router.lifespan_context(app), browser(app) as anonymous:
        response = await anonymous.get("/dashboard/leaderboard")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/signin")
        assert (await anonymous.get("/dashboard/signin")).status_code == 200


async def test_plotly_is_served_by_quantdesk_itself(anonymous: httpx.AsyncClient):
    response = await anonymous.get("/dashboard/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) > 1_000_000
    assert b"plotly" in response.content[:2000].lower()
    assert (await anonymous.get("/dashboard/static/dashboard.css")).status_code == 200


# Signing in ---------------------------------------------------------------------------------------


async def test_signing_in_keeps_the_key_in_an_httponly_samesite_cookie(anonymous: httpx.AsyncClient, alice_key: str):
    wrong = await anonymous.post("/dashboard/signin", data={"api_key": "qd_not_a_key"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    signed = await anonymous.post("/dashboard/signin", data={"api_key": alice_key, "next": "/dashboard/leaderboard"})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/dashboard/leaderboard"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={alice_key}")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    page = await anonymous.get("/dashboard/leaderboard")
    assert 'data-testid="signed-in-as">alice<' in page.text
    signed_out = await anonymous.post("/dashboard/signout")
    assert signed_out.status_code == 303
    assert f'{COOKIE}=""' in signed_out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example", "/api/v1/users", "javascript:alert(1)"])
async def test_signing_in_never_redirects_off_the_dashboard(anonymous: httpx.AsyncClient, alice_key: str, target: str):
    signed = await anonymous.post("/dashboard/signin", data={"api_key": alice_key, "next": target})
    assert signed.headers["location"] == "/dashboard/accounts"


async def test_the_api_ignores_the_dashboard_cookie(app: FastAPI, alice_key: str):
    async with browser(app, alice_key) as client:
        assert (await client.get("/api/v1/accounts")).status_code == 401


async def test_a_revoked_key_signs_the_browser_out(app: FastAPI, alice: httpx.AsyncClient, alice_key: str):
    async with http_client(app, alice_key) as api:
        keys = (await api.get("/api/v1/keys")).json()
        assert (await api.delete(f"/api/v1/keys/{keys[0]['id']}")).status_code == 204
    assert (await alice.get("/dashboard/accounts")).status_code == 303


async def test_open_sign_up_creates_a_trader_shows_the_key_once_and_signs_in(engine: AsyncEngine, database_url: str):
    from quantdesk.api.app import create_app

    app = create_app(Settings(database_url=database_url, open_signup=True, _env_file=None))
    async with app.router.lifespan_context(app), browser(app) as visitor:
        welcome = await visitor.post("/dashboard/signup", data={"username": "carol"})
        assert welcome.status_code == 201
        key = re.search(r'id="new-api-key">(qd_[^<]+)<', welcome.text)
        assert key is not None
        assert welcome.cookies[COOKIE] == key.group(1)
        taken = await visitor.post("/dashboard/signup", data={"username": "Carol"})
        assert taken.status_code == 422
        assert "taken" in taken.text


async def test_sign_up_is_closed_unless_the_server_opens_it(anonymous: httpx.AsyncClient):
    closed = await anonymous.post("/dashboard/signup", data={"username": "mallory"})
    assert closed.status_code == 403
    assert "sign-up is closed" in closed.text


# Forms --------------------------------------------------------------------------------------------


async def test_a_form_without_its_token_or_from_another_site_is_refused_and_changes_nothing(
    engine: AsyncEngine, alice: httpx.AsyncClient, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    forged = await alice.post(f"{page}/deposit", data={"amount": "500"})
    assert forged.status_code == 403
    assert "reload the page" in forged.text
    wrong = await alice.post(f"{page}/deposit", data={"amount": "500", "csrf_token": "0" * 64})
    assert wrong.status_code == 403
    elsewhere = await alice.post(
        f"{page}/deposit", data={"amount": "500", "csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert "another site" in elsewhere.text
    assert await cash_of(engine, alice_account) == (Decimal(1000), Decimal(1000))
    done = await alice.post(f"{page}/deposit", data={"amount": "500", "csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"] == page
    assert await cash_of(engine, alice_account) == (Decimal(1500), Decimal(1500))


async def test_withdrawing_more_than_the_cash_says_so_and_keeps_the_ledger(
    engine: AsyncEngine, alice: httpx.AsyncClient, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    too_much = await alice.post(f"{page}/withdraw", data={"amount": "1000.01", "csrf_token": token})
    assert too_much.status_code == 422
    assert 'id="action-error"' in too_much.text
    for amount in ("-5", "abc", "NaN", "0"):
        bad = await alice.post(f"{page}/withdraw", data={"amount": amount, "csrf_token": token})
        assert bad.status_code == 422, amount
    assert (await alice.post(f"{page}/withdraw", data={"amount": "250.5", "csrf_token": token})).status_code == 303
    assert await cash_of(engine, alice_account) == (Decimal("749.5"), Decimal("749.5"))


@pytest.mark.usefixtures("market")
async def test_the_order_ticket_fills_a_buy_and_a_refused_order_stores_nothing(
    engine: AsyncEngine, alice: httpx.AsyncClient, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    ticket = {"symbol": "ACME", "side": "buy", "type": "market", "time_in_force": "gtc", "csrf_token": token}
    bought = await alice.post(f"{page}/orders", data={**ticket, "quantity": "3"})
    assert bought.status_code == 303
    refused = await alice.post(f"{page}/orders", data={**ticket, "quantity": "1000"})
    assert refused.status_code == 422
    assert "account 1 has 700" in refused.text
    assert 'value="1000"' in refused.text  # the ticket keeps what was typed
    invalid = await alice.post(f"{page}/orders", data={**ticket, "quantity": "-1"})
    assert invalid.status_code == 422
    assert "quantity" in invalid.text
    async with create_sessionmaker(engine)() as session:
        orders = list(await session.scalars(select(Order).where(Order.account_id == alice_account)))
    assert [(o.quantity, o.status, o.source) for o in orders] == [(Decimal(3), "filled", "dashboard")]
    cash, ledger = await cash_of(engine, alice_account)
    assert cash == ledger == Decimal(700)
    live = await alice.get(f"{page}/live")
    assert live.status_code == 200
    assert f'id="order-{orders[0].id}"' in live.text
    assert "<html" not in live.text


@pytest.mark.usefixtures("market")
async def test_an_open_order_is_canceled_from_the_page(alice: httpx.AsyncClient, alice_account: int):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    limit = {
        "symbol": "ACME",
        "side": "buy",
        "type": "limit",
        "quantity": "1",
        "limit_price": "50",
        "csrf_token": token,
    }
    placed = await alice.post(f"{page}/orders", data=limit)
    order_id = int(placed.headers["location"].rsplit("=", 1)[1])
    assert 'data-status="accepted"' in (await alice.get(page)).text
    canceled = await alice.post(f"{page}/orders/{order_id}/cancel", data={"csrf_token": token})
    assert canceled.status_code == 303
    assert f'<tr id="order-{order_id}" data-status="canceled">' in (await alice.get(page)).text
    again = await alice.post(f"{page}/orders/{order_id}/cancel", data={"csrf_token": token})
    assert again.status_code == 409
    assert "only open orders" in again.text


async def test_a_webhook_url_is_shown_once_with_the_alert_template_and_can_be_revoked(
    alice: httpx.AsyncClient, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    created = await alice.post(f"{page}/webhooks", data={"label": "my strategy", "csrf_token": token})
    assert created.status_code == 200
    url = re.search(r'id="webhook-url">(http://testserver/webhooks/wh_[^<]+)<', created.text)
    assert url is not None
    assert "{{strategy.order.action}}" in created.text
    again = await alice.get(page)
    assert url.group(1) not in again.text
    assert "my strategy" in again.text
    token_id = re.search(r"/webhooks/(\d+)/revoke", again.text)
    assert token_id is not None
    revoked = await alice.post(f"{page}/webhooks/{token_id.group(1)}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert "revoked" in (await alice.get(page)).text


async def test_nobody_sees_another_users_account_not_even_an_admin(
    app: FastAPI, engine: AsyncEngine, admin_key: str, alice_account: int
):
    bob_key = await make_user(engine, "bob")
    for key in (bob_key, admin_key):
        async with browser(app, key) as other:
            assert (await other.get(f"/dashboard/accounts/{alice_account}")).status_code == 404
            assert (await other.get(f"/dashboard/accounts/{alice_account}/live")).status_code == 404
            listing = await other.get("/dashboard/accounts")
            assert f"/dashboard/accounts/{alice_account}" not in listing.text
            token = await form_token(other, "/dashboard/accounts")
            stolen = await other.post(
                f"/dashboard/accounts/{alice_account}/withdraw", data={"amount": "1", "csrf_token": token}
            )
            assert stolen.status_code == 404
    assert await cash_of(engine, alice_account) == (Decimal(1000), Decimal(1000))


async def test_an_account_is_opened_from_the_page(engine: AsyncEngine, alice: httpx.AsyncClient):
    token = await form_token(alice, "/dashboard/accounts")
    opened = await alice.post(
        "/dashboard/accounts", data={"name": "swing", "currency": "eur", "initial_deposit": "2500", "csrf_token": token}
    )
    assert opened.status_code == 303
    account_id = int(opened.headers["location"].rsplit("/", 1)[1])
    assert await cash_of(engine, account_id) == (Decimal(2500), Decimal(2500))
    clash = await alice.post("/dashboard/accounts", data={"name": "swing", "csrf_token": token})
    assert clash.status_code == 422
    assert "already has an account" in clash.text


@pytest.mark.usefixtures("demo_bars")
async def test_backtest_sweep_and_forecast_forms_run_and_show_their_results(alice: httpx.AsyncClient):
    token = await form_token(alice, "/dashboard/backtests")
    run = {"symbol": "ACME", "strategy": "sma_cross", "params": "fast=10, slow=40", "cash": "5000", "csrf_token": token}
    made = await alice.post("/dashboard/backtests", data=run)
    assert made.status_code == 303
    result = await alice.get(made.headers["location"])
    assert result.status_code == 200
    assert 'data-metric="return_pct"' in result.text
    assert "fast=10 slow=40" in result.text
    for params, problem in (
        ("fast=10 slow", "not name=value"),
        ("fast=ten", "not a number"),
        ("speed=3", "unknown parameter"),
    ):
        wrong = await alice.post("/dashboard/backtests", data={**run, "params": params})
        assert wrong.status_code == 422, params
        assert problem in wrong.text, params
    sweep = {**run, "grid": "fast=10:20:10 slow=40,60", "rank_by": "return_pct"}
    queued = await alice.post("/dashboard/sweeps", data=sweep)
    assert queued.status_code == 303
    sweep_page = await alice.get(queued.headers["location"])
    assert 'data-status="done"' in sweep_page.text
    assert '"type":"heatmap"' in sweep_page.text
    cell = await alice.post(
        f"{queued.headers['location']}/backtest", data={"params": "fast=20 slow=60", "csrf_token": token}
    )
    assert cell.status_code == 303
    assert "fast=20 slow=60" in (await alice.get(cell.headers["location"])).text
    forecast = {"symbol": "GLOBEX", "model": "ridge", "horizon": "10", "as_of": "2025-06-02", "csrf_token": token}
    predicted = await alice.post("/dashboard/forecasts", data=forecast)
    assert predicted.status_code == 303
    shown = await alice.get(predicted.headers["location"])
    assert "10 of 10 predicted bars have an actual close" in shown.text
    assert "model hold-out" in shown.text
    bad = await alice.post("/dashboard/forecasts", data={**forecast, "horizon": "0"})
    assert bad.status_code == 422
    assert "horizon" in bad.text
    pdf = await alice.get(made.headers["location"].replace("/backtests/", "/reports/backtest/") + ".pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.usefixtures("demo_bars")
async def test_running_research_needs_a_signed_in_user(anonymous: httpx.AsyncClient):
    refused = await anonymous.post("/dashboard/backtests", data={"symbol": "ACME"})
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/dashboard/signin")
    assert "Sign in</a> to run a backtest" in (await anonymous.get("/dashboard/backtests")).text


async def test_the_signal_tester_shows_the_parse_or_the_reason(anonymous: httpx.AsyncClient):
    parsed = await anonymous.post("/dashboard/signals", data={"message": "#GOLD sell limit @ 2015.5 SL 2020 TP 2000"})
    assert parsed.status_code == 200
    assert '<td data-field="symbol">XAUUSD' in parsed.text
    assert '<td data-field="side">sell</td>' in parsed.text
    assert "no such instrument on this server" in parsed.text
    rejected = await anonymous.post("/dashboard/signals", data={"message": "BUY {{ticker}} now"})
    assert rejected.status_code == 422
    assert 'data-outcome="rejected"' in rejected.text
    assert "placeholder" in rejected.text


async def test_the_leaderboard_switches_metric_and_window_and_refuses_unknown_ones(anonymous: httpx.AsyncClient):
    page = await anonymous.get("/dashboard/leaderboard", params={"by": "sharpe", "window": "7d"})
    assert page.status_code == 200
    assert 'href="?by=sharpe&amp;window=7d" aria-current="page"' in page.text
    wrong = await anonymous.get("/dashboard/leaderboard", params={"by": "luck"})
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("text/html")


# The live socket ----------------------------------------------------------------------------------


async def test_the_socket_accepts_the_cookie_only_from_the_dashboards_own_origin(app: FastAPI, alice_key: str):
    cookie = {"cookie": f"{COOKIE}={alice_key}"}
    async with serving(app) as host:
        async with connect(f"ws://{host}/ws", additional_headers={**cookie, "origin": f"http://{host}"}) as socket:
            assert (await receive(socket))["data"]["status"] == "authorized"
        evil = {**cookie, "origin": "https://evil.example"}
        async with connect(f"ws://{host}/ws", additional_headers=evil, open_timeout=5) as socket:
            await socket.send('{"action": "auth", "key": "nothing"}')
            assert (await receive(socket))["data"]["status"] == "unauthorized"


@pytest.mark.usefixtures("market")
async def test_a_trade_is_closed_and_a_pending_signal_canceled_from_the_page(
    app: FastAPI, alice: httpx.AsyncClient, alice_key: str, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    async with http_client(app, alice_key) as api:
        path = await webhook_path(api, alice_account)
        opened = (await send(api, path, "BUY ACME")).json()["signal_id"]
        assert (await settled(api, opened))["status"] == "executed"
    token = await form_token(alice, page)
    assert f'action="/dashboard/accounts/{alice_account}/signals/{opened}/close"' in (await alice.get(page)).text
    closed = await alice.post(f"{page}/signals/{opened}/close", data={"csrf_token": token})
    assert closed.status_code == 303
    async with http_client(app, alice_key) as api:
        assert (await api.get(f"/api/v1/signals/{opened}")).json()["status"] == "closed"
    again = await alice.post(f"{page}/signals/{opened}/close", data={"csrf_token": token})
    assert again.status_code == 409
    assert "only an executed signal" in again.text
    wrong = await alice.post(f"{page}/signals/{opened}/explode", data={"csrf_token": token})
    assert wrong.status_code == 422


async def test_a_webhook_is_rotated_and_the_account_reset_only_when_confirmed(
    engine: AsyncEngine, alice: httpx.AsyncClient, alice_account: int
):
    page = f"/dashboard/accounts/{alice_account}"
    token = await form_token(alice, page)
    first = await alice.post(f"{page}/webhooks", data={"label": "tv", "csrf_token": token})
    old_url = re.search(r'id="webhook-url">([^<]+)<', first.text)
    token_id = re.search(r"/webhooks/(\d+)/rotate", (await alice.get(page)).text)
    assert old_url is not None
    assert token_id is not None
    rotated = await alice.post(f"{page}/webhooks/{token_id.group(1)}/rotate", data={"csrf_token": token})
    new_url = re.search(r'id="webhook-url">([^<]+)<', rotated.text)
    assert new_url is not None
    assert new_url.group(1) != old_url.group(1)
    assert (await alice.post(old_url.group(1).removeprefix("http://testserver"), content="BUY ACME")).status_code == 404
    await alice.post(f"{page}/withdraw", data={"amount": "400", "csrf_token": token})
    unconfirmed = await alice.post(f"{page}/reset", data={"confirm": "nope", "csrf_token": token})
    assert unconfirmed.status_code == 422
    assert await cash_of(engine, alice_account) == (Decimal(600), Decimal(600))
    reset = await alice.post(f"{page}/reset", data={"confirm": "main", "csrf_token": token})
    assert reset.status_code == 303
    assert await cash_of(engine, alice_account) == (Decimal(1000), Decimal(1000))


async def test_markets_show_prices_at_their_precision_dated_by_their_bar(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    await client.post("/api/v1/instruments", json={"symbol": "PREC", "price_precision": 2})
    day = {"open": 75.4, "high": 75.6, "low": 75.3, "volume": 1}
    bars = [
        {"timestamp": "2024-12-30", **day, "close": 75.44362981},
        {"timestamp": "2024-12-31", **day, "close": 75.44062981},  # down 0.003: 0.00 at two decimals
    ]
    assert (await client.post("/api/v1/instruments/PREC/bars?interval=1d", json=bars)).status_code in (200, 201)
    row = re.search(
        r"<tr>\s*<td><a href=\"/dashboard/markets/PREC\">.*?</tr>", (await anonymous.get("/dashboard")).text, re.S
    )
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(), re.S)]
    assert cells[3:] == ["75.44", "0.00", "0.00", "2024-12-31 (1d bar)"]  # not 75.44062981, -0.00 or 2025-01-01
    page = (await anonymous.get("/dashboard/markets/PREC")).text
    assert "<strong>75.44</strong>" in page
    assert "as of 2024-12-31 (1d bar)" in page


async def test_the_signal_tester_sends_a_test_signal_to_one_of_the_viewers_accounts(
    app: FastAPI,
    market: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    alice_key: str,
    alice_account: int,
    anonymous: httpx.AsyncClient,
):
    token = await form_token(alice, "/dashboard/signals")
    assert f'<option value="{alice_account}">' in (await alice.get("/dashboard/signals")).text
    form = {"message": "BUY ACME qty 2", "account_id": str(alice_account), "csrf_token": token}
    sent = await alice.post("/dashboard/signals/send", data=form)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith(f"/dashboard/accounts/{alice_account}#signal-")
    async with http_client(app, alice_key) as api:
        executed = await settled(api, int(sent.headers["location"].rsplit("-", 1)[1]))
    assert (executed["status"], executed["symbol"], executed["quantity"]) == ("executed", "ACME", "2.00000000")
    refused = await alice.post("/dashboard/signals/send", data={**form, "message": "}} BUY ACME {{"})
    assert refused.status_code == 422
    assert "broken placeholder" in refused.text
    assert "stored as rejected signal" in refused.text
    assert (await alice.post("/dashboard/signals/send", data={**form, "csrf_token": "0" * 64})).status_code == 403
    nobody = await anonymous.post("/dashboard/signals/send", data=form)
    assert nobody.headers["location"].startswith("/dashboard/signin")  # signed out: asked to sign in


async def test_a_sweep_page_says_what_is_happening_and_its_owner_can_cancel_it(
    app: FastAPI, demo_bars: None, alice: httpx.AsyncClient, alice_key: str, engine: AsyncEngine
):
    async with http_client(app, alice_key) as api:
        run = (
            await api.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": {"fast": [5, 10], "slow": [50]}})
        ).json()
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        stored = await session.get(SweepRun, run["id"])
        assert stored is not None
        stored.status, stored.completed, stored.results = "running", 0, None
    page = (await alice.get(f"/dashboard/sweeps/{run['id']}")).text
    assert "loading the bars and the compiled simulator" in page
    token = await form_token(alice, f"/dashboard/sweeps/{run['id']}")
    cancelled = await alice.post(f"/dashboard/sweeps/{run['id']}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303
    page = (await alice.get(f"/dashboard/sweeps/{run['id']}")).text
    assert 'data-status="cancelled"' in page
    assert 'id="cancel-sweep"' not in page


@pytest.mark.usefixtures("demo_bars")
async def test_the_strategy_page_checks_saves_and_hands_a_rule_strategy_to_backtests_and_sweeps(
    alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    page = await alice.get("/dashboard/strategies")
    assert "crosses_below(rsi(close, n), lo)" in page.text  # the example, ready to check
    token = await form_token(alice, "/dashboard/strategies")
    document = {
        "name": "dip",
        "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
        "entry": "crosses_below(rsl(close, n), lo)",
    }
    wrong = await alice.post(
        "/dashboard/strategies", data={"document": json.dumps(document), "action": "check", "csrf_token": token}
    )
    assert wrong.status_code == 422
    assert "entry at 15: unknown function &#39;rsl&#39;; did you mean &#39;rsi&#39;?" in wrong.text
    assert "entry: crosses_below(rsl(close, n), lo)\n" + " " * 21 + "^" in wrong.text  # the caret under 'rsl'
    document["entry"] = "crosses_below(rsi(close, n), lo)"
    checked = await alice.post(
        "/dashboard/strategies", data={"document": json.dumps(document), "action": "check", "csrf_token": token}
    )
    assert "dip compiles" in checked.text
    assert 'id="param-table"' in checked.text
    assert "dip" not in (await alice.get("/dashboard/backtests")).text.split("Recent backtests")[0]
    for version in (1, 2):
        saved = await alice.post(
            "/dashboard/strategies", data={"document": json.dumps(document), "action": "save", "csrf_token": token}
        )
        assert saved.headers["location"] == f"/dashboard/strategies?name=dip&saved={version}"
    form = await alice.get("/dashboard/backtests?strategy=dip&symbol=ACME")
    assert '<option value="dip"' in form.text
    assert "dip (yours, v2)" in form.text
    assert 'value="n=14 lo=30"' in form.text
    run = {"symbol": "ACME", "strategy": "dip", "params": "n=10 lo=35", "csrf_token": token}
    made = await alice.post("/dashboard/backtests", data=run)
    assert made.status_code == 303, made.text
    assert (await anonymous.get(made.headers["location"])).status_code == 404  # a run of a user's own strategy
    queued = await alice.post("/dashboard/sweeps", data={**run, "grid": "n=10:20:10 lo=25,35", "rank_by": "sharpe"})
    assert queued.status_code == 303
    assert "dip" in (await alice.get(queued.headers["location"])).text
    gone = await alice.post("/dashboard/strategies/dip/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert "None yet" in (await alice.get("/dashboard/strategies")).text


@pytest.mark.usefixtures("demo_bars")
async def test_the_walkforward_form_runs_and_shows_its_folds_and_report(alice: httpx.AsyncClient):
    token = await form_token(alice, "/dashboard/backtests")
    form = {
        "symbol": "ACME",
        "strategy": "sma_cross",
        "grid": "fast=10,20 slow=50,100",
        "train": "750",
        "test": "250",
        "mode": "anchored",
        "metric": "return_pct",
        "csrf_token": token,
    }
    queued = await alice.post("/dashboard/walkforwards", data=form)
    assert queued.status_code == 303, queued.text
    page = await alice.get(queued.headers["location"])
    assert 'data-status="done"' in page.text
    assert page.text.count("<tr><td>") >= 5  # one row a fold
    assert 'data-metric="efficiency"' in page.text
    assert 'id="equity-figure"' in page.text
    pdf = await alice.get(queued.headers["location"].replace("walkforwards", "reports/walkforward") + ".pdf")
    assert pdf.content.startswith(b"%PDF")
    wrong = await alice.post("/dashboard/walkforwards", data={**form, "train": "100000"})
    assert wrong.status_code == 422
    assert "do not fit" in wrong.text
    listed = await alice.get("/dashboard/backtests")
    assert "Recent walk-forwards" in listed.text
