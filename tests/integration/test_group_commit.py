"""Group commit: work handed in together runs in one transaction, and each item keeps its own outcome."""

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account, LedgerEntry, User
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.core.errors import InsufficientFunds, NotFound, QuantdeskError, ValidationFailed
from quantdesk.core.group_commit import GroupCommit
from quantdesk.market.models import Instrument
from quantdesk.trading import prices
from quantdesk.trading import service as trading
from quantdesk.trading.models import Fill, Order, Position
from quantdesk.trading.schemas import OrderCreate


async def a_trader_with_cash(engine: AsyncEngine, cash: str) -> tuple[accounts.Principal, int]:
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        user, _ = await accounts.create_user(session, "trader")
        account = await accounts.open_account(session, user, "main", "USD", Decimal(cash))
        instrument = Instrument(symbol="ACME", currency="USD", asset_class="stock")
        session.add(instrument)
        await session.flush()
        await prices.set_price(session, instrument, Decimal("10"), "admin")
        return accounts.principal_of(user), account.id


def buy(account_id: int, quantity: str = "1", **fields: object) -> OrderCreate:
    return OrderCreate.model_validate(
        {"account_id": account_id, "symbol": "ACME", "side": "buy", "quantity": quantity, **fields}
    )


async def test_orders_placed_together_each_get_their_own_outcome(engine, settings):
    caller, account_id = await a_trader_with_cash(engine, "100")
    requests = [
        trading.OrderRequest(caller, buy(account_id, "4")),  # 40 of the 100
        trading.OrderRequest(caller, buy(account_id, "1", symbol="NOPE")),
        trading.OrderRequest(caller, buy(account_id, "7")),  # 70: more than the 60 left
        trading.OrderRequest(caller, buy(account_id, "0.5")),  # ACME trades in whole units
        trading.OrderRequest(caller, buy(account_id, "6", client_order_id="once")),  # the last 60
        trading.OrderRequest(caller, buy(account_id, "6", client_order_id="once")),  # the same order again
        trading.OrderRequest(caller, buy(999)),
    ]
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        outcomes = await trading.place_orders(session, requests, settings)

    first, unknown, too_dear, fraction, keyed, again, elsewhere = outcomes
    assert not isinstance(first, QuantdeskError)
    assert first[0].status == "filled"
    assert isinstance(unknown, NotFound)
    assert "NOPE" in unknown.detail
    assert isinstance(too_dear, InsufficientFunds)
    assert "has 60.00000000 USD" in too_dear.detail
    assert isinstance(fraction, ValidationFailed)
    assert "whole units" in fraction.detail
    assert not isinstance(keyed, QuantdeskError)
    assert keyed == (keyed[0], True)
    assert again == (keyed[0], False), "the same client_order_id is the same order, filled once"
    assert isinstance(elsewhere, NotFound)
    async with create_sessionmaker(engine)() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        assert account.cash == Decimal(0)
        ledger = await session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == account_id))
        assert ledger == account.cash
        assert await session.scalar(select(func.count()).select_from(Order)) == 2, "refused orders store nothing"
        assert await session.scalar(select(func.count()).select_from(Fill)) == 2
        position = await session.get(Position, (account_id, first[0].instrument_id))
        assert position is not None
        assert position.quantity == 10


async def test_each_order_of_a_batch_fills_against_the_cash_the_ones_before_it_left(engine, settings):
    caller, account_id = await a_trader_with_cash(engine, "35")
    requests = [trading.OrderRequest(caller, buy(account_id)) for _ in range(5)]
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        outcomes = await trading.place_orders(session, requests, settings)
    assert [isinstance(o, InsufficientFunds) for o in outcomes] == [False, False, False, True, True]
    filled = [o[0] for o in outcomes if not isinstance(o, QuantdeskError)]
    assert len({order.id for order in filled}) == 3


async def test_items_arriving_while_a_batch_runs_form_the_next_batch(engine):
    sizes: list[int] = []
    release = asyncio.Event()

    async def work(session: AsyncSession, items: Sequence[int]) -> list[int | Exception]:
        sizes.append(len(items))
        await release.wait()
        return [item * 2 for item in items]

    batcher: GroupCommit[int, int] = GroupCommit(create_sessionmaker(engine), work, in_flight=1)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.05)  # the first batch (of one) is running
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 6)]
    await asyncio.sleep(0.05)
    release.set()
    assert await first == 2
    assert [await task for task in rest] == [4, 6, 8, 10]
    assert sizes == [1, 4]


async def test_a_batch_smaller_than_the_last_waits_for_the_rest_of_its_clients(engine):
    sizes: list[int] = []

    async def work(session: AsyncSession, items: Sequence[int]) -> list[int | Exception]:
        sizes.append(len(items))
        return list(items)

    batcher: GroupCommit[int, int] = GroupCommit(create_sessionmaker(engine), work, linger_s=0.5)
    assert await asyncio.gather(*(batcher.submit(n) for n in (1, 2, 3))) == [1, 2, 3]
    # Answered together, the three clients come back one after another, within the linger.
    first = asyncio.create_task(batcher.submit(4))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(batcher.submit(n)) for n in (5, 6)]
    assert [await first, *[await task for task in rest]] == [4, 5, 6]
    assert sizes == [3, 3]


async def test_an_item_as_many_as_the_last_batch_runs_at_once(engine):
    async def work(session: AsyncSession, items: Sequence[int]) -> list[int | Exception]:
        return list(items)

    batcher: GroupCommit[int, int] = GroupCommit(create_sessionmaker(engine), work, linger_s=60)
    # One client at a time: each batch is as large as the last, so none waits out the minute.
    for n in range(3):
        assert await asyncio.wait_for(batcher.submit(n), timeout=10) == n


async def test_a_batch_that_fails_runs_its_items_one_by_one(engine):
    """Two new users of the same name in one batch: the commit fails on the unique name, and nothing of the
    batch is stored. Each item then runs alone: the first two are stored, the third gets its own error."""
    calls: list[list[str]] = []

    async def work(session: AsyncSession, names: Sequence[str]) -> list[str | Exception]:
        calls.append(list(names))
        session.add_all([User(username=n, username_key=n, display_name=n, role="trader") for n in names])
        return list(names)

    batcher: GroupCommit[str, str] = GroupCommit(create_sessionmaker(engine), work)
    tasks = [asyncio.create_task(batcher.submit(name)) for name in ("alice", "bob", "alice")]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == [["alice", "bob", "alice"], ["alice"], ["bob"], ["alice"]]
    assert outcomes[:2] == ["alice", "bob"]
    assert isinstance(outcomes[2], IntegrityError)
    async with create_sessionmaker(engine)() as session:
        assert set(await session.scalars(select(User.username))) == {"alice", "bob"}


async def test_a_request_that_hangs_up_does_not_cancel_the_batch_it_is_in(engine):
    started, release = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def work(session: AsyncSession, items: Sequence[int]) -> list[int | Exception]:
        started.set()
        await release.wait()
        done.extend(items)
        return list(items)

    batcher: GroupCommit[int, int] = GroupCommit(create_sessionmaker(engine), work)
    gone = asyncio.create_task(batcher.submit(1))
    await started.wait()
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    release.set()
    assert await batcher.submit(2) == 2
    assert done == [1, 2]
