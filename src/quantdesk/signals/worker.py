"""The broker worker: executes the orders signals placed, in arrival order per account, exactly once.

A worker claims an account that has waiting signal orders with ``SELECT ... FOR UPDATE SKIP LOCKED``
(the account row is the lock every change of cash or holdings takes first, so claiming it can never
deadlock with a REST order or a price update), then executes that account's oldest waiting orders, up to
BATCH of them, in the same transaction: what they read (the orders with their signals, the prices, the
positions, the bracket legs) is read once for all of them, and what they write is written at the commit.
Workers in any number of processes share the queue; a worker killed mid-batch leaves its transaction
uncommitted, so the orders are still waiting and the next worker executes them. On SQLite, writers are
serialised by BEGIN IMMEDIATE, which gives the same guarantee with one worker per process.
"""

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import ColumnElement, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import (
    connection_lost,
    lost_to_a_concurrent_transaction,
    session_scope,
)
from quantdesk.core.errors import InsufficientFunds, ValidationFailed
from quantdesk.market.models import Instrument
from quantdesk.realtime.hub import Hub
from quantdesk.signals import lifecycle
from quantdesk.signals.models import Signal
from quantdesk.trading import broker, prices, resting
from quantdesk.trading import service as trading
from quantdesk.trading.models import WAITING_FOR_BROKER, Order, Position
from quantdesk.trading.status import transition

log = logging.getLogger(__name__)
QUEUED_LEGS = ("entry", "close")
CLAIM_SCAN = 16  # waiting orders looked at to find an account no other worker holds
# Orders of one account executed in one transaction. The orders of a batch read once for all and query
# nothing of their own, but a fill is announced when its transaction commits, so each waits for the
# last one, and a long batch holds the event loop from the requests. benchmarks/signals.py (32
# connections, 2 server processes) while the webhook took 1,030-1,140 signals/s: with 8 per
# transaction the workers executed 611/s, fill-to-WebSocket p99 25 ms; 16: 789/s, 29 ms; 32: 902/s,
# 44 ms and answer p99 65 ms against 51-53. With 1 (each order its own queries) they executed 153/s.
BATCH = 16
HELD_BACKOFF_S = 0.05


def _waiting() -> tuple[ColumnElement[bool], ...]:
    return (WAITING_FOR_BROKER, Order.leg.in_(QUEUED_LEGS))


# The queue's queries, built once (building a statement costs more than running it).
_SCAN = select(Order.account_id, Order.id).where(*_waiting()).order_by(Order.id).limit(CLAIM_SCAN).subquery()
_FIRST = select(_SCAN.c.account_id, func.min(_SCAN.c.id).label("first_id")).group_by(_SCAN.c.account_id).subquery()
# The account of the oldest waiting order that no other worker holds, locked, in one statement. PostgreSQL
# locks the rows as they come out of the sort, so those skipped do not count against the LIMIT.
_CLAIM = (
    select(Account)
    .join(_FIRST, _FIRST.c.account_id == Account.id)
    .order_by(_FIRST.c.first_id)
    .limit(1)
    .with_for_update(of=Account, skip_locked=True, key_share=True)
    .execution_options(populate_existing=True)
)
_ANY_WAITING = select(exists().where(*_waiting()))
# Read under the account's lock: what another worker committed before it is seen. Then their signals (by
# ix_signals_order_id), which the fills' lifecycle finds in the session instead of reading them again.
_OLDEST = (
    select(Order)
    .where(Order.account_id == bindparam("account_id"), *_waiting())
    .order_by(Order.id)
    .limit(bindparam("batch"))
    .execution_options(populate_existing=True)
)
_THEIR_SIGNALS = select(Signal).where(Signal.order_id.in_(bindparam("orders", expanding=True)))
_LEGS = (
    select(Order)
    .where(Order.parent_id.in_(bindparam("entries", expanding=True)))
    .order_by(Order.id)
    .execution_options(populate_existing=True)
)


async def queue_state(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many signal orders wait for a worker, and since when the oldest has."""
    found = await session.execute(select(func.count(), func.min(Order.created_at)).where(*_waiting()))
    depth, oldest = found.one()
    return depth, oldest


class Outcome(Enum):
    EXECUTED = "executed"  # orders were executed: look again at once
    EMPTY = "empty"  # nothing waits
    HELD = "held"  # orders wait, but other workers hold every account they belong to


async def run(factory: async_sessionmaker[AsyncSession], settings: Settings, hub: Hub, stop: asyncio.Event) -> None:
    """Execute waiting orders until ``stop`` is set (and the hub's wake-up with it); sleep until woken by
    a new signal or the poll interval.

    The stop is looked at between transactions only. A task cancelled inside one can leave its
    connection behind: on SQLite a BEGIN IMMEDIATE still waiting for the lock in aiosqlite's thread
    takes it after the cancel, and holds every other writer off until that connection is collected."""
    while not stop.is_set():
        hub.work_waiting.clear()
        outcome = Outcome.EMPTY
        try:
            while not stop.is_set() and (outcome := await execute_next(factory, settings)) is Outcome.EXECUTED:
                pass
        except Exception:  # a database outage must not end the worker: it tries again after the poll
            log.exception("broker worker: the queue could not be read")
        if outcome is Outcome.HELD and not stop.is_set():
            # Another worker is executing that account's orders and goes on until they are done; trying
            # again on every new signal would only spend CPU the receiving requests need.
            await asyncio.sleep(HELD_BACKOFF_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.work_waiting.wait(), settings.worker_poll_s)


@dataclass
class Reads:
    """What the orders of one transaction read once for all: the waiting orders with their signals, each
    instrument with its last price, each position and the entries' bracket legs. Held here for the
    transaction, since the session's identity map keeps no object alive on its own."""

    orders: list[tuple[Order, Signal]] = field(default_factory=list)
    legs: dict[int, list[Order]] = field(default_factory=dict)  # by entry id
    priced: dict[int, tuple[Instrument, Decimal] | ValidationFailed] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)  # by instrument id

    @classmethod
    async def load(cls, session: AsyncSession, account: Account, batch: int = BATCH) -> "Reads":
        """The account's oldest waiting orders, up to ``batch``, with their signals, and their legs."""
        oldest = list(await session.scalars(_OLDEST, {"account_id": account.id, "batch": batch}))
        signals = {s.order_id: s for s in await session.scalars(_THEIR_SIGNALS, {"orders": [o.id for o in oldest]})}
        orders = [(order, signals[order.id]) for order in oldest if order.id in signals]
        entries = [order.id for order, _ in orders if order.leg == "entry" and order.has_legs]
        legs: dict[int, list[Order]] = {entry: [] for entry in entries}
        if entries:
            for leg in await session.scalars(_LEGS, {"entries": entries}):
                legs[leg.parent_id or 0].append(leg)
        return cls(orders, legs)

    async def price(self, session: AsyncSession, instrument_id: int) -> tuple[Instrument, Decimal]:
        """The instrument and its last price, read once per transaction (raises ValidationFailed)."""
        if instrument_id not in self.priced:
            try:
                self.priced[instrument_id] = await prices.priced_instrument_by_id(session, instrument_id)
            except ValidationFailed as unpriced:
                self.priced[instrument_id] = unpriced
        found = self.priced[instrument_id]
        if isinstance(found, ValidationFailed):
            raise dataclasses.replace(found)  # each refused order its own error
        return found

    async def position(self, session: AsyncSession, account: Account, instrument: Instrument) -> Position:
        """The position (an empty one not stored yet when there is none), kept current in the session:
        an earlier fill of the transaction has changed it already."""
        if instrument.id not in self.positions:
            self.positions[instrument.id], _ = await broker.position_of(session, account, instrument)
        return self.positions[instrument.id]

    async def legs_of(self, session: AsyncSession, order: Order) -> list[Order]:
        if order.id in self.legs:
            return self.legs[order.id]
        return await trading.order_legs(session, order)


async def execute_next(factory: async_sessionmaker[AsyncSession], settings: Settings, batch: int = BATCH) -> Outcome:
    """Execute the waiting orders of one account, oldest first, up to ``batch`` in one transaction."""
    executing: int | None = None  # the order being executed, while it is
    executed: list[int] = []  # the orders executed in the transaction, not committed yet
    try:
        async with session_scope(factory, write=True) as session:
            account, waiting = await claim(session)
            if account is None:
                return Outcome.HELD if waiting else Outcome.EMPTY
            reads = await Reads.load(session, account, batch)
            for order, signal in reads.orders:
                executing = order.id
                await execute(session, order, signal, account, settings, reads)
                executed.append(order.id)
                executing = None
                # The orders of a batch read nothing of their own, so without this the batch held the
                # event loop from its first order to its commit (about 10 ms of CPU for 16), and the
                # webhook requests arriving meanwhile waited for all of it. In four alternating runs of
                # benchmarks/signals.py: answer p99 44-59 ms against 52-62, fill-to-WebSocket p99 31-38
                # ms against 26-27 (a fill is announced at its batch's commit, which now comes later).
                await asyncio.sleep(0)
        return Outcome.EXECUTED
    except Exception as failure:
        if (executing is None and not executed) or connection_lost(failure):
            raise  # the queue could not be read, or the database went away: tried again after the poll
        if (lost_to := lost_to_a_concurrent_transaction(failure)) is not None:
            orders = len(executed) + (executing is not None)
            log.warning("broker worker: a batch of %d orders met %s; it is executed again", orders, lost_to)
            return Outcome.EXECUTED
        if executing is None and len(executed) > 1:
            # The commit failed, and nothing of the batch was stored: which order's rows failed it is
            # known only alone, so each runs again in a transaction of its own.
            log.warning("broker worker: a batch of %d failed at its commit; its orders run one by one", len(executed))
            for _ in executed:
                await execute_next(factory, settings, batch=1)
            return Outcome.EXECUTED
        failed = executing if executing is not None else executed[0]
        # The batch rolled back; the order that failed is rejected, the others wait for the next claim.
        log.exception("broker worker: order %s failed", failed)
        await _give_up(factory, failed, f"the broker could not execute it ({type(failure).__name__})")
        return Outcome.EXECUTED


async def claim(session: AsyncSession) -> tuple[Account | None, bool]:
    """An account with waiting orders, locked for this transaction (skipping those other workers hold)
    and read under the lock; and whether any order was waiting at all."""
    account = await session.scalar(_CLAIM)
    if account is not None:
        return account, True
    return None, bool(await session.scalar(_ANY_WAITING))


async def execute(
    session: AsyncSession, order: Order, signal: Signal, account: Account, settings: Settings, reads: Reads
) -> None:
    """Execute one waiting order of ``account`` (placed by ``signal``), which the caller holds locked;
    ``reads``: what the transaction's orders read once for all."""
    try:
        instrument, market = await reads.price(session, order.instrument_id)
    except ValidationFailed as unpriced:
        await _refuse(session, order, unpriced.detail)
        return
    deal = resting.terms(settings)
    held = (await reads.position(session, account, instrument)).quantity
    legs = await reads.legs_of(session, order)
    if order.leg == "close" or _opposes(order.side, held):
        # What follows reads the open trades from the database: the earlier orders' changes go first.
        await session.flush()
    if order.leg == "close":
        if held == 0:
            await _refuse(session, order, f"there is nothing to close: account {account.id} holds no {order.symbol}")
            return
        order.side, order.quantity = ("sell" if held > 0 else "buy"), abs(held)
    elif _opposes(order.side, held):
        opens = await _close_first(session, order, signal, account, instrument, market, deal, held)
        if not opens:
            return
    await _fill_or_reject(session, order, legs, account, instrument, market, deal)


def _opposes(side: str, held: Decimal) -> bool:
    return (held > 0 and side == "sell") or (held < 0 and side == "buy")


async def _close_first(
    session: AsyncSession,
    order: Order,
    signal: Signal,
    account: Account,
    instrument: Instrument,
    market: Decimal,
    deal: broker.Terms,
    held: Decimal,
) -> bool:
    """An opposite signal first closes the open position (closing its trades); True when the signal's
    own order should then open its trade."""
    values = {
        "account_id": account.id,
        "instrument_id": instrument.id,
        "symbol": instrument.symbol,
        "side": order.side,
        "type": "market",
        "time_in_force": "gtc",
        "quantity": abs(held),
        "status": "new",
        "leg": "close",
        "source": "signal",
        "generation": account.generation,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    closer = Order(**values)
    await trading.add_new_order(session, closer, None)
    await session.flush()  # its id, by which its lifecycle finds the signal (lifecycle.signal_of)
    signal.close_order_id = closer.id
    await session.flush()
    await _fill_or_reject(session, closer, [], account, instrument, market, deal)
    if closer.status != "filled":
        await _refuse(session, order, f"the open position could not be closed first: {closer.reason}")
        return False
    if order.side == "sell" and not account.allow_short:
        transition(session, order, "canceled", "it closed the long position; short selling is off, so no short opens")
        await _end_legs(session, order)
        # It did all it could do: close. Its trade is the one it closed (whose P&L that trade has), so it
        # ends closed, is no open trade in the analytics, and has nothing left to close.
        signal.closed_at = utcnow()
        lifecycle.record(session, signal, "closed", "closed the long position; opened no short (short selling is off)")
        return False
    return True


async def _fill_or_reject(
    session: AsyncSession,
    order: Order,
    legs: list[Order],
    account: Account,
    instrument: Instrument,
    market: Decimal,
    deal: broker.Terms,
) -> None:
    try:  # no savepoint: a refused fill has changed nothing (broker.execute)
        await trading.route(session, order, legs, account, instrument, market, deal)
    except InsufficientFunds as refused:
        await _refuse(session, order, refused.detail)


async def _refuse(session: AsyncSession, order: Order, reason: str) -> None:
    await broker.reject(session, order, reason)
    await _end_legs(session, order)


async def _end_legs(session: AsyncSession, order: Order) -> None:
    for leg in await trading.order_legs(session, order):
        if leg.status == "new":
            transition(session, leg, "canceled", f"the entry was {order.status}")


async def _give_up(factory: async_sessionmaker[AsyncSession], order_id: int, reason: str) -> None:
    """An order that fails for an unexpected reason is rejected, not retried for ever."""
    async with session_scope(factory, write=True) as session:
        order = await session.get(Order, order_id)
        if order is not None and order.status == "new":
            await _refuse(session, order, reason)
