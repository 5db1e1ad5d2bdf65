"""The dashboard in a real browser: every page loads cleanly, forms work, the account page is live.

Each test serves the app on a loopback port (SQLite and PostgreSQL) over the demo's daily bars, and
drives Debian's Chromium. With QUANTDESK_SCREENSHOTS=docs/screenshots the page test saves a picture of
each page (how the README's screenshots are made).
"""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.core.clock import utcnow
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.market import demo
from tests.conftest import http_client, make_user
from tests.e2e.browser import SCREENSHOTS, browser_page, needs_chromium, sign_in
from tests.integration.live import serving

pytestmark = [needs_chromium, pytest.mark.slow]


@dataclass
class Site:
    base_url: str
    alice_key: str
    bob_key: str
    alice: httpx.AsyncClient
    account_id: int


@pytest.fixture
async def site(app: FastAPI, engine: AsyncEngine, admin_key: str) -> AsyncIterator[Site]:
    """The demo's six instruments (daily bars to yesterday), and alice and bob with a 100,000 account each."""
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        await demo.load_demo(session, utcnow().date(), False)
    alice_key, bob_key = await make_user(engine, "alice"), await make_user(engine, "bob")
    async with serving(app) as host, http_client(app, alice_key) as alice:
        opened = await alice.post(
            "/api/v1/accounts", json={"name": "main", "currency": "USD", "initial_deposit": "100000"}
        )
        assert opened.status_code == 201, opened.text
        yield Site(f"http://{host}", alice_key, bob_key, alice, opened.json()["id"])


async def _research_runs(alice: httpx.AsyncClient) -> dict[str, int]:
    """A backtest, a finished two-parameter sweep and a forecast scored against 30 actual bars."""
    backtest = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "params": {"fast": 20, "slow": 50}})
    sweep = await alice.post(
        "/api/v1/sweeps", json={"symbol": "ACME", "grid": {"fast": "10:30:10", "slow": "40:80:20"}, "rank_by": "sharpe"}
    )
    as_of = (utcnow().date() - timedelta(days=60)).isoformat()
    forecast = await alice.post("/api/v1/forecasts", json={"symbol": "ACME", "horizon": 30, "as_of": as_of})
    for response in (backtest, sweep, forecast):
        assert response.status_code in (201, 202), response.text
    return {"backtest": backtest.json()["id"], "sweep": sweep.json()["id"], "forecast": forecast.json()["id"]}


async def _trade(site: Site) -> None:
    for side, quantity in (("buy", "100"), ("sell", "40")):
        placed = await site.alice.post(
            "/api/v1/orders",
            json={
                "account_id": site.account_id,
                "symbol": "ACME",
                "side": side,
                "type": "market",
                "quantity": quantity,
            },
        )
        assert placed.status_code == 201, placed.text
    resting = await site.alice.post(
        "/api/v1/orders",
        json={
            "account_id": site.account_id,
            "symbol": "GLOBEX",
            "side": "buy",
            "type": "limit",
            "quantity": "5",
            "limit_price": "1",
        },
    )
    assert resting.status_code == 201, resting.text
    hook = await site.alice.post(f"/api/v1/accounts/{site.account_id}/webhooks", json={"label": "tradingview"})
    async with httpx.AsyncClient(base_url=site.base_url) as tradingview:
        sent = await tradingview.post("/webhooks/" + hook.json()["token"], content="BUY GLOBEX\nSL 50\nTP 90")
    assert sent.status_code == 202, sent.text


def screenshot_path(name: str) -> str:
    folder = Path(SCREENSHOTS or ".")
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{name}.png")


async def _visit(page: Page, path: str, name: str, ready: str) -> None:
    await page.goto(path)
    await page.wait_for_selector(ready)
    if SCREENSHOTS:
        await page.screenshot(path=screenshot_path(name))


async def test_every_page_loads_with_no_console_error_and_no_failed_request(site: Site) -> None:
    runs = await _research_runs(site.alice)
    await _trade(site)
    drawn = "[data-drawn=true]"
    pages = [
        ("/dashboard", "markets", "#markets"),
        ("/dashboard/markets/ACME?ind=sma:20&ind=sma:50&ind=bollinger:20:2&ind=rsi:14", "instrument", drawn),
        ("/dashboard/backtests", "backtest-form", "#backtest-form"),
        (f"/dashboard/backtests/{runs['backtest']}", "backtest", drawn),
        (f"/dashboard/sweeps/{runs['sweep']}", "sweep", drawn),
        ("/dashboard/forecasts", "forecast-form", "#forecast-form"),
        (f"/dashboard/forecasts/{runs['forecast']}", "forecast", drawn),
        ("/dashboard/accounts", "accounts", "#accounts"),
        (f"/dashboard/accounts/{site.account_id}", "account", "#live-state[data-state=live]"),
        ("/dashboard/signals", "signal-tester", "#signal-form"),
        ("/dashboard/leaderboard", "leaderboard", "#leaderboard"),
    ]
    async with browser_page(site.base_url) as (page, problems):
        await sign_in(page, site.alice_key)
        for path, name, ready in pages:
            await _visit(page, path, name, ready)
        await page.goto("/dashboard/signals")
        await page.fill("#message", "XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025")
        await page.click("#parse-signal")
        await expect(page.locator("[data-field=symbol]")).to_contain_text("XAUUSD")
        await expect(page.locator("[data-field=take_profit]")).to_have_text("2020, 2025")
        if SCREENSHOTS:
            await page.screenshot(path=screenshot_path("signal-tester"))
        assert problems.seen == []


# The outermost elements that stick out of the screen, to say what to fix.
WIDEST_ELEMENTS = """
[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`
    + ` ${Math.round(e.getBoundingClientRect().right)}px`)
"""


async def test_the_dashboard_fits_a_phone(site: Site) -> None:
    await _trade(site)  # orders, signals and a webhook: the account page's tables have rows
    pages = [
        (f"/dashboard/accounts/{site.account_id}", "account-phone", "#webhooks"),
        (
            "/dashboard/markets/ACME?ind=sma:20&ind=bollinger:20:2&ind=rsi:14&range=1y",
            "instrument-phone",
            "[data-drawn=true]",
        ),
        ("/dashboard", "markets-phone", "#markets"),
        ("/dashboard/signals", "signals-phone", "#signal-form"),
    ]
    async with browser_page(site.base_url, width=390, height=844) as (page, problems):
        await sign_in(page, site.alice_key)
        for path, name, ready in pages:
            await _visit(page, path, name, ready)
            width = await page.evaluate("document.documentElement.scrollWidth")
            wide = await page.evaluate(WIDEST_ELEMENTS)
            assert width <= 391, f"{path} scrolls sideways on a phone: {width} px wide in a 390 px screen: {wide}"
        assert problems.seen == []


async def test_a_backtest_run_from_the_form_shows_its_metrics(site: Site) -> None:
    async with browser_page(site.base_url) as (page, problems):
        await sign_in(page, site.alice_key)
        await page.goto("/dashboard/backtests?symbol=GLOBEX")
        await page.select_option("#backtest-form select[name=strategy]", "ema_cross")
        await expect(page.locator("#params")).to_have_value("fast=12 slow=26")
        await page.fill("#params", "fast=10 slow=30")
        await page.fill("#backtest-form input[name=commission_pct]", "0.2")
        await page.click("#backtest-form button[type=submit]")
        await page.wait_for_url(re.compile(r"/dashboard/backtests/\d+$"))
        await page.wait_for_selector("#equity-chart[data-drawn=true]")
        backtest_id = int(page.url.rsplit("/", 1)[1])
        stored: dict[str, Any] = (await site.alice.get(f"/api/v1/backtests/{backtest_id}")).json()
        assert stored["symbol"] == "GLOBEX"
        assert stored["params"] == {"fast": 10.0, "slow": 30.0}
        assert stored["settings"]["commission_pct"] == 0.2
        metrics = stored["metrics"]
        await expect(page.locator("[data-metric=return_pct]")).to_have_text(f"{metrics['return_pct']:+,.2f}%")
        await expect(page.locator("[data-metric=trades]")).to_have_text(str(metrics["trades"]))
        await expect(page.locator("#trades tbody tr")).to_have_count(len(stored["trades"]))
        assert problems.seen == []


async def test_a_click_on_a_heat_map_cell_opens_that_backtest(site: Site) -> None:
    sweep = await site.alice.post(
        "/api/v1/sweeps", json={"symbol": "ACME", "grid": {"fast": [10, 20], "slow": 60}, "rank_by": "sharpe"}
    )
    assert sweep.status_code == 202, sweep.text
    async with browser_page(site.base_url) as (page, problems):
        await sign_in(page, site.alice_key)
        await page.goto(f"/dashboard/sweeps/{sweep.json()['id']}")
        await page.wait_for_selector("#heatmap[data-drawn=true]")
        cells = page.locator("#heatmap .nsewdrag").first  # Plotly's drag layer over the plot area
        box = await cells.bounding_box()
        assert box is not None
        await page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)  # the right column
        await page.wait_for_url(re.compile(r"/dashboard/backtests/\d+$"))
        await expect(page.locator("h1")).to_contain_text("fast=20 slow=60")
        assert problems.seen == []


async def test_a_signal_posted_to_the_webhook_appears_on_the_open_account_page_without_a_reload(site: Site) -> None:
    created = await site.alice.post(f"/api/v1/accounts/{site.account_id}/webhooks", json={"label": "tv"})
    webhook = "/webhooks/" + created.json()["token"]
    async with browser_page(site.base_url) as (page, problems):
        await sign_in(page, site.alice_key)
        await page.goto(f"/dashboard/accounts/{site.account_id}")
        await page.wait_for_selector("#live-state[data-state=live]")
        await page.evaluate("window.sameDocument = true")
        async with httpx.AsyncClient(base_url=site.base_url) as tradingview:
            answer = await tradingview.post(
                webhook, content="BUY ACME\nSL 1\nTP 100000", headers={"content-type": "text/plain"}
            )
        assert answer.status_code == 202, answer.text
        signal_id = answer.json()["signal_id"]
        row = page.locator(f"#signal-{signal_id}")
        await expect(row).to_have_attribute("data-status", "executed")
        await expect(page.locator("#positions")).to_contain_text("ACME")
        await expect(page.locator("#open-orders")).to_contain_text("take_profit")
        assert await page.evaluate("window.sameDocument") is True, "the page was reloaded"
        assert problems.seen == []


async def test_signing_out_hides_the_account_pages(site: Site) -> None:
    async with browser_page(site.base_url) as (page, _problems):
        await sign_in(page, site.alice_key)
        await page.goto(f"/dashboard/accounts/{site.account_id}")
        await expect(page.locator("[data-testid=signed-in-as]")).to_have_text("alice")
        await page.click("text=Sign out")
        await page.wait_for_url("**/dashboard/signin")
        for path in (
            "/dashboard/accounts",
            f"/dashboard/accounts/{site.account_id}",
            f"/dashboard/accounts/{site.account_id}/live",
        ):
            await page.goto(path)
            assert "/dashboard/signin" in page.url, path
            await expect(page.locator("#signin-form")).to_be_visible()
        assert await page.locator("text=main").count() == 0
        cookies = await page.context.cookies()
        assert not [c for c in cookies if c["name"] == "quantdesk_key"]


async def test_another_traders_account_is_never_shown(site: Site) -> None:
    async with browser_page(site.base_url) as (page, _problems):
        await sign_in(page, site.bob_key)
        response = await page.goto(f"/dashboard/accounts/{site.account_id}")
        assert response is not None
        assert response.status == 404
        await page.goto("/dashboard/accounts")
        await expect(page.locator("#accounts")).to_have_count(0)
