"""Last prices and day changes: the markets page's quotes and the portfolio's day change.

Both compare the last price with the close before a day began, whatever intervals are stored, and
read many instruments in a fixed number of queries (a market of hundreds must not cost hundreds).
"""

from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.api.app import create_app
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.market.models import Instrument
from quantdesk.trading import prices
from tests.conftest import counted_statements, http_client
from tests.integration.trading_helpers import open_account, order


def midnight(days_ago: int) -> datetime:
    return utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def bar(ts: datetime, close: float) -> dict[str, object]:
    return {"timestamp": ts.isoformat(), "open": close, "high": close, "low": close, "close": close, "volume": 1}


async def post_bars(client: httpx.AsyncClient, symbol: str, interval: str, bars: list[dict[str, object]]) -> None:
    response = await client.post(f"/api/v1/instruments/{symbol}/bars?interval={interval}", json=bars)
    assert response.status_code in (200, 201), response.text


async def test_the_day_change_is_measured_from_the_last_close_before_today(market, alice, client):
    # Yesterday's daily bar closed at midnight, after the minute bars of yesterday noon: its close counts.
    await post_bars(client, "ACME", "1d", [bar(midnight(3), 90), bar(midnight(2), 95), bar(midnight(1), 98)])
    noon = midnight(1) + timedelta(hours=12)
    await post_bars(client, "ACME", "1m", [bar(noon, 97), bar(noon + timedelta(minutes=1), 96.5)])
    await post_bars(client, "ACME", "1m", [bar(midnight(0), 99)])  # opened today: not before today
    assert (await client.post("/api/v1/instruments/ACME/ticks", json={"price": "105"})).status_code == 200
    account = await open_account(alice, "10000")
    assert (await order(alice, account, quantity="10")).status_code == 201

    [portfolio] = (await alice.get(f"/api/v1/portfolio?account_id={account}")).json()
    [position] = portfolio["positions"]
    assert Decimal(position["price"]) == 105
    assert Decimal(position["day_change"]) == 10 * (105 - 98)
    assert Decimal(portfolio["day_change"]) == 70


async def test_a_quote_compares_the_last_price_with_the_close_before_its_own_day(market, client, engine):
    await post_bars(client, "ACME", "1d", [bar(midnight(2), 95), bar(midnight(1), 98)])
    await client.post("/api/v1/instruments/ACME/ticks", json={"price": "105"})
    # OLD trades no more: its last price is its newest bar's close, stamped when that bar closed.
    await client.post("/api/v1/assets", json={"symbol": "OLD", "asset_class": "stock"})
    await post_bars(client, "OLD", "1d", [bar(midnight(5), 10), bar(midnight(4), 11), bar(midnight(3), 12)])

    async with session_scope(create_sessionmaker(engine)) as session:
        instruments = list(await session.scalars(select(Instrument).order_by(Instrument.symbol)))
        quotes = await prices.quotes(session, instruments)
    by_symbol = {instrument.symbol: quotes[instrument.id] for instrument in instruments}
    acme, old, btc = by_symbol["ACME"], by_symbol["OLD"], by_symbol["BTC"]
    assert (acme.price, acme.previous_close, acme.change) == (Decimal(105), Decimal(98), Decimal(7))
    assert round(acme.change_pct or 0, 4) == round(7 / 98 * 100, 4)
    assert (old.price, old.at, old.previous_close) == (Decimal(12), midnight(2), Decimal(11))
    assert (btc.price, btc.previous_close) == (Decimal(50000), None)  # no bars: no change


async def test_quotes_of_a_whole_market_take_the_same_few_queries_as_two(client, engine):
    for n in range(8):
        await client.post("/api/v1/assets", json={"symbol": f"S{n}", "asset_class": "stock", "price": "10"})
        await post_bars(client, f"S{n}", "1d", [bar(midnight(2), 8 + n), bar(midnight(1), 9 + n)])

    async def queries_for(count: int) -> int:
        async with session_scope(create_sessionmaker(engine)) as session:
            instruments = list(await session.scalars(select(Instrument).order_by(Instrument.id).limit(count)))
            with counted_statements(engine) as statements:
                quoted = await prices.quotes(session, instruments)
        assert len(quoted) == count
        return len(statements)

    assert await queries_for(8) == await queries_for(2)


async def test_the_markets_page_lists_every_quote_in_a_fixed_number_of_queries(
    settings: Settings, admin_key: str, engine: AsyncEngine
):
    settings.broker_worker = False  # its queue polls would be counted with the page's queries
    app = create_app(settings)
    async with app.router.lifespan_context(app), http_client(app, admin_key) as client, http_client(app) as anonymous:

        async def page_queries() -> int:
            with counted_statements(app.state.engine) as statements:
                page = await anonymous.get("/dashboard")
            assert page.status_code == 200
            assert statements  # the page's own queries, on the server's engine
            return len(statements)

        for n in range(2):
            await client.post("/api/v1/assets", json={"symbol": f"S{n}", "asset_class": "stock", "price": "10"})
        await anonymous.get("/dashboard")  # the first render compiles the templates
        few = await page_queries()
        for n in range(2, 10):
            await client.post("/api/v1/assets", json={"symbol": f"S{n}", "asset_class": "stock", "price": "10"})
        page = await anonymous.get("/dashboard")
        assert all(f"S{n}" in page.text for n in range(10))
        assert await page_queries() == few
