"""Writers meeting on the same accounts at the same moment (PostgreSQL): price updates, orders, the broker.

Each test holds a lock from outside, lines requests up behind it in a chosen order, and then lets them
go: interleavings that otherwise depend on timing happen every time. SQLite runs one writer at a time,
so they cannot happen there.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from quantdesk.accounts.models import User
from quantdesk.core.config import Settings
from quantdesk.gamification.models import GemEntry
from tests.integration.signal_helpers import send, settled, webhook_path
from tests.integration.trading_helpers import books, open_account, order

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgresql_url: str) -> str:
    """PostgreSQL only: SQLite runs one writer at a time, so these interleavings cannot happen there."""
    return postgresql_url


@asynccontextmanager
async def holding(engine: AsyncEngine, account_id: int) -> AsyncIterator[None]:
    """The account's row lock, taken as an order would take it, and released when the block ends."""
    async with engine.connect() as connection:
        await lock_account(connection, account_id)
        yield
        await connection.commit()


async def lock_account(connection: AsyncConnection, account_id: int) -> None:
    await connection.execute(text("SELECT id FROM accounts WHERE id = :id FOR NO KEY UPDATE"), {"id": account_id})


async def until_waiting(engine: AsyncEngine, count: int) -> None:
    """Until ``count`` transactions wait for a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(1000):
        async with engine.connect() as connection:
            if await connection.scalar(query) >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} transaction(s) never waited for a lock")


async def test_an_order_canceled_while_a_price_update_waits_for_its_account_is_not_filled(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine
):
    account = await open_account(alice, "100000")
    resting = (await order(alice, account, type="limit", limit_price="90")).json()
    before = await books(alice, account)
    async with holding(engine, account):
        cancel = asyncio.create_task(alice.delete(f"/api/v1/orders/{resting['id']}"))
        await until_waiting(engine, 1)
        # The tick reads the order while it is still working, then queues for the account behind the cancel.
        tick = asyncio.create_task(market.post("/api/v1/instruments/ACME/ticks", json={"price": "85"}))
        await until_waiting(engine, 2)
    assert (await cancel).status_code == 200
    assert (await tick).json()["orders_filled"] == 0
    after = (await alice.get(f"/api/v1/orders/{resting['id']}")).json()
    assert [e["status"] for e in after["events"]] == ["new", "accepted", "canceled"]
    assert await books(alice, account) == before


async def test_a_price_update_and_an_order_of_the_same_user_at_a_milestone_do_not_deadlock(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, app: FastAPI
):
    """The tick fills alice's first account and would earn her next milestone, while a market order on her
    second account, ahead of the tick in that account's queue, earns the same milestone."""
    settings.gem_milestones = dict.fromkeys(range(1, 11), 1)  # every trade is a milestone
    first, second = [await open_account(alice, "100000", name=name) for name in ("first", "second")]
    for account in (first, second):
        assert (await order(alice, account, type="limit", limit_price="90")).json()["status"] == "accepted"
    async with holding(engine, second):
        market_order = asyncio.create_task(order(alice, second))
        await until_waiting(engine, 1)
        tick = asyncio.create_task(market.post("/api/v1/instruments/ACME/ticks", json={"price": "85"}))
        await until_waiting(engine, 2)
    placed, ticked = await market_order, await tick
    assert (placed.status_code, ticked.status_code) == (201, 200), (placed.text, ticked.text)
    assert ticked.json()["orders_filled"] == 2
    async with app.state.sessionmaker() as session:
        reasons = sorted(await session.scalars(select(GemEntry.reason).where(GemEntry.reason != "trade")))
    assert reasons == ["milestone:1", "milestone:2", "milestone:3"]


@asynccontextmanager
async def first_milestone_taken(engine: AsyncEngine, username: str) -> AsyncIterator[AsyncConnection]:
    """A transaction that has stored the user's first milestone and not committed it: the next trade's
    milestone insert waits for it. Its deadlock check comes long after the other side's, so when a
    deadlock forms, PostgreSQL ends the other transaction."""
    async with engine.connect() as connection:
        await connection.execute(text("SET deadlock_timeout = '10s'"))
        user_id = await connection.scalar(select(User.id).where(User.username == username))
        await connection.execute(insert(GemEntry).values(user_id=user_id, amount=1, reason="milestone:1"))
        yield connection
        await connection.rollback()


async def close_a_deadlock(other: AsyncConnection, account_id: int) -> None:
    await lock_account(other, account_id)  # the milestone's transaction now waits for the account


async def end_the_waiting_connection(other: AsyncConnection, _account_id: int) -> None:
    """As a database restart would end it."""
    ended = await other.scalar(
        text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    assert ended == 1


async def test_a_request_the_database_ends_to_break_a_deadlock_is_a_503_to_retry(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
):
    settings.gem_milestones = {1: 5}
    account = await open_account(alice, "100000")
    before = await books(alice, account)
    async with first_milestone_taken(engine, "alice") as other:
        placed = asyncio.create_task(order(alice, account))
        await until_waiting(engine, 1)  # the order holds the account and waits for the milestone
        await close_a_deadlock(other, account)
        ended = await placed
    assert ended.status_code == 503, ended.text
    assert ended.json()["error"] == "database_conflict"
    assert "deadlock" in ended.json()["detail"]
    assert ended.headers["retry-after"] == "1"
    assert await books(alice, account) == before
    assert (await order(alice, account)).status_code == 201


@pytest.mark.parametrize("end_the_order", [close_a_deadlock, end_the_waiting_connection])
async def test_a_signal_order_whose_transaction_the_database_ends_is_executed_again(
    market: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    end_the_order: Callable[[AsyncConnection, int], Awaitable[None]],
):
    settings.gem_milestones = {1: 5}
    account = await open_account(alice, "100000")
    path = await webhook_path(alice, account)
    async with first_milestone_taken(engine, "alice") as other:
        sent = await send(alice, path, "BUY ACME")
        await until_waiting(engine, 1)  # the broker worker holds the account and waits for the milestone
        await end_the_order(other, account)
    signal = await settled(alice, sent.json()["signal_id"])
    assert (signal["status"], signal["entry_price"]) == ("executed", "100.00000000")
    assert len((await books(alice, account))["positions"]) == 1


async def test_the_first_prices_of_an_asset_arriving_together_are_all_taken(client: httpx.AsyncClient):
    created = await client.post("/api/v1/assets", json={"symbol": "NEWCO", "asset_class": "stock"})
    assert created.status_code == 201, created.text
    ticks = await asyncio.gather(
        *(client.post("/api/v1/instruments/NEWCO/ticks", json={"price": str(price)}) for price in range(10, 30))
    )
    assert [tick.status_code for tick in ticks] == [200] * 20, [tick.text for tick in ticks if tick.status_code != 200]


async def test_a_trade_closed_twice_at_the_same_moment_is_closed_once(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "100000", allow_short=True)
    path = await webhook_path(alice, account)
    signal = await settled(alice, (await send(alice, path, "BUY ACME")).json()["signal_id"])
    closes = await asyncio.gather(*(alice.post(f"/api/v1/signals/{signal['id']}/close") for _ in range(2)))
    assert sorted(close.status_code for close in closes) == [200, 409], [close.text for close in closes]
    assert (await books(alice, account))["positions"] == []


async def test_an_asset_is_not_deleted_from_under_an_order_filling_in_it(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
):
    """The delete comes while the buy has stored its fill but not committed: once the buy commits, the
    account holds the asset, and the delete is refused instead of taking the position with it."""
    settings.gem_milestones = {1: 5}
    account = await open_account(alice, "100000")
    async with first_milestone_taken(engine, "alice"):
        placed = asyncio.create_task(order(alice, account))
        await until_waiting(engine, 1)
        deleting = asyncio.create_task(market.delete("/api/v1/assets/ACME"))
        await until_waiting(engine, 2)
    assert (await placed).status_code == 201
    refused = await deleting
    assert refused.status_code == 409, refused.text
    assert [row["symbol"] for row in (await books(alice, account))["positions"]] == ["ACME"]


async def test_an_order_in_an_asset_deleted_meanwhile_is_refused_with_a_409(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine
):
    account = await open_account(alice, "100000")
    before = await books(alice, account)
    async with engine.connect() as deleting:
        await deleting.execute(text("DELETE FROM instruments WHERE symbol = 'ACME'"))
        placed = asyncio.create_task(order(alice, account))  # it reads the asset, then waits for the delete
        await until_waiting(engine, 1)
        await deleting.commit()
    refused = await placed
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "conflict"
    assert await books(alice, account) == before


async def test_a_day_order_past_its_session_is_expired_once_by_concurrent_listings(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, engine: AsyncEngine
):
    account = await open_account(alice, "100000")
    day = (await order(alice, account, type="limit", limit_price="50", time_in_force="day")).json()
    async with engine.begin() as connection:  # its session ended a moment ago
        await connection.execute(
            text("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": day["id"]}
        )
    listings = await asyncio.gather(*(alice.get("/api/v1/orders") for _ in range(6)))
    assert all(listing.status_code == 200 for listing in listings)
    expired = (await alice.get(f"/api/v1/orders/{day['id']}")).json()
    assert [e["status"] for e in expired["events"]] == ["new", "accepted", "expired"]
