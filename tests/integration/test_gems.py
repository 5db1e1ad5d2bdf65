"""Gems and milestones: the bonus at the Nth trade, and the gem ledger counted only while it matters."""

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import event, select

from quantdesk.accounts.models import User
from quantdesk.core.config import Settings
from quantdesk.core.db import session_scope
from quantdesk.gamification.awards import TRADES_KEY, award_trade
from quantdesk.gamification.models import GemEntry
from quantdesk.realtime.events import all_or_nothing
from quantdesk.trading.models import Order
from tests.integration.trading_helpers import open_account, order

MILESTONES = {5: 5, 10: 10}  # the settings' default


@contextmanager
def gem_counts(app: FastAPI) -> Iterator[list[str]]:
    """The statements that count a user's trade gems, as the server runs them."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "count(" in statement and "gems" in statement:
            seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def gems_of(http: httpx.AsyncClient, username: str) -> int:
    board = (await http.get("/api/v1/leaderboard?by=gems&top=50")).json()
    return int(next(row["gems"] for row in board if row["username"] == username))


async def alice_with_trades(alice: httpx.AsyncClient, app: FastAPI, trades: int) -> tuple[int, list[int], int]:
    """An account of alice's with ``trades`` filled orders: the account, the orders and alice's user id."""
    account = await open_account(alice, "100000")
    filled = [(await order(alice, account)).json()["id"] for _ in range(trades)]
    async with app.state.sessionmaker() as session:
        alice_id = await session.scalar(select(User.id).where(User.username == "alice"))
    assert alice_id is not None
    return account, filled, alice_id


async def test_trades_past_the_last_milestone_earn_one_gem_without_counting_the_ledger_again(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI
):
    account = await open_account(alice, "100000")
    with gem_counts(app) as counts:
        for n in range(1, 11):
            assert (await order(alice, account)).status_code == 201
            assert len(counts) == n  # every trade up to the last milestone is counted
        assert await gems_of(alice, "alice") == 10 + 5 + 10
        for _ in range(3):
            assert (await order(alice, account)).status_code == 201
        assert len(counts) == 10  # the 10th was the last milestone: no bonus can follow, nothing to count
    assert await gems_of(alice, "alice") == 13 + 5 + 10


class Undone(Exception):
    """Raised to undo a savepoint."""


async def gem_reasons(app: FastAPI, order_id: int) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list(
            await session.scalars(select(GemEntry.reason).where(GemEntry.order_id == order_id).order_by(GemEntry.id))
        )


async def test_a_count_is_remembered_only_when_its_transaction_commits(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI
):
    account, filled, alice_id = await alice_with_trades(alice, app, 9)
    factory = app.state.sessionmaker
    async with session_scope(factory) as session:
        # Two more gems in a savepoint that is undone, the 10th and an 11th trade, in a transaction
        # that then commits (as the dashboard's forms do after a refusal).
        with contextlib.suppress(Undone):
            async with all_or_nothing(session):
                for _ in range(2):
                    await award_trade(session, alice_id, account, await session.get_one(Order, filled[0]), MILESTONES)
                raise Undone
    assert factory.kw["info"][TRADES_KEY][alice_id] == 9
    assert await gem_reasons(app, filled[0]) == ["trade"]  # the one of the 9th trade
    async with session_scope(factory) as session:
        await award_trade(session, alice_id, account, await session.get_one(Order, filled[0]), MILESTONES)
    assert await gem_reasons(app, filled[0]) == ["trade", "trade", "milestone:10"]
    assert factory.kw["info"][TRADES_KEY][alice_id] == 10


async def test_concurrent_trades_of_one_user_earn_each_milestone_once(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    """Two accounts of one user trading at the same moment both count the user's Nth trade; only one of
    them may earn its bonus. Here every trade is a milestone, so every concurrent pair races for one."""
    settings.gem_milestones = dict.fromkeys(range(1, 41), 1)
    accounts = [await open_account(alice, "100000", name=name) for name in ("first", "second")]
    for _ in range(20):
        placed = await asyncio.gather(*(order(alice, account) for account in accounts))
        assert [response.status_code for response in placed] == [201, 201]
    async with app.state.sessionmaker() as session:
        reasons = list(await session.scalars(select(GemEntry.reason).where(GemEntry.reason != "trade")))
    assert sorted(reasons) == sorted(f"milestone:{n}" for n in range(1, 41))
    assert await gems_of(alice, "alice") == 40 + 40


async def test_a_milestone_the_user_has_already_is_not_given_again(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI
):
    account, filled, alice_id = await alice_with_trades(alice, app, 4)
    factory = app.state.sessionmaker
    async with session_scope(factory) as session:
        session.add(GemEntry(user_id=alice_id, account_id=account, amount=5, reason="milestone:5"))
    before = await gem_reasons(app, filled[0])
    async with session_scope(factory) as session:  # the 5th trade finds its milestone taken
        await award_trade(session, alice_id, account, await session.get_one(Order, filled[0]), MILESTONES)
    assert await gem_reasons(app, filled[0]) == [*before, "trade"]
