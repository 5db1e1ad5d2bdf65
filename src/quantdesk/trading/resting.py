"""Resting orders against a new price: day orders past their session expire, triggered ones fill."""

from decimal import Decimal

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings, get_settings
from quantdesk.core.db import dialect_name
from quantdesk.core.errors import InsufficientFunds
from quantdesk.market.models import Instrument
from quantdesk.signals import lifecycle
from quantdesk.trading import broker
from quantdesk.trading.matching import Costs, Resting, execution_price, stop_reached
from quantdesk.trading.models import RESTING, Order
from quantdesk.trading.status import transition


def terms(settings: Settings | None = None) -> broker.Terms:
    """Commission, slippage and gem milestones from the server's settings (the process's by default:
    a price can arrive through an ingest that has no request around it)."""
    settings = settings or get_settings()
    return broker.Terms(Costs.from_settings(settings), settings.gem_milestones)


async def expire_due(session: AsyncSession, instrument_id: int | None = None) -> int:
    """Day orders whose session ended: expired, with the time it ended.

    On PostgreSQL the orders are locked as they are read, so that concurrent transactions expire each
    order once. Listings (all instruments) skip those another transaction is expiring; a price update
    (one instrument) waits for it, so that it never fills an order that has just expired."""
    query = select(Order).where(RESTING, Order.expires_at <= utcnow())
    if instrument_id is not None:
        query = query.where(Order.instrument_id == instrument_id)
    if dialect_name(session) == "postgresql":
        query = query.with_for_update(skip_locked=instrument_id is None).execution_options(populate_existing=True)
    due = list(await session.scalars(query))
    for order in due:
        transition(
            session, order, "expired", f"a day order: its session ended at {order.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        await lifecycle.follow(session, order)
    return len(due)


def resting_view(order: Order) -> Resting:
    return Resting(order.side, order.type, order.limit_price, order.stop_price, order.stop_triggered_at is not None)


async def on_price(
    session: AsyncSession, instrument: Instrument, price: Decimal, deal: broker.Terms | None = None
) -> list[Order]:
    """Fill every working order of the instrument that the price triggers; returns those filled.

    The accounts of the triggered orders are all locked, in id order, before anything is filled: a
    transaction that waits for an account then holds nothing that the holder may wait for (another price
    update, or an order of the same user earning the same gem milestone), so none of them deadlock. The
    orders are read again under the locks: one canceled or filled meanwhile is not filled again.
    """
    await expire_due(session, instrument.id)
    deal = deal or terms()
    working = await _working(session, select(Order).where(Order.instrument_id == instrument.id))
    for order in working:
        if order.type == "stop_limit" and order.stop_triggered_at is None and stop_reached(resting_view(order), price):
            order.stop_triggered_at = utcnow()  # from now on a limit order
    triggered = [order for order in working if execution_price(resting_view(order), price, deal.costs) is not None]
    if not triggered:
        return []
    accounts = await lock_accounts(session, {order.account_id for order in triggered})
    filled: list[Order] = []
    for order in await _working(session, select(Order).where(Order.id.in_([order.id for order in triggered]))):
        fill_price = execution_price(resting_view(order), price, deal.costs)
        if fill_price is None:  # pragma: no cover - only the price moves the trigger, and it is this one
            continue
        try:  # no savepoint: a refused fill has changed nothing
            await broker.execute(session, order, accounts[order.account_id], instrument, fill_price, deal)
            filled.append(order)
        except InsufficientFunds as refused:
            await broker.reject(session, order, f"triggered at {price} but refused: {refused.detail}")
    return filled


async def _working(session: AsyncSession, orders: Select[Order]) -> list[Order]:
    """Those of ``orders`` still working, by account and age, as committed now (and as this transaction
    changed them: the day orders it just expired are not working)."""
    await session.flush()
    query = orders.where(RESTING).order_by(Order.account_id, Order.id).execution_options(populate_existing=True)
    return list(await session.scalars(query))


# Built once: building a statement and its cache key costs about as much as running it.
_ACCOUNTS = (
    select(Account)
    .where(Account.id.in_(bindparam("account_ids", expanding=True)))
    .order_by(Account.id)
    .execution_options(populate_existing=True)
)
_LOCKED_ACCOUNTS = _ACCOUNTS.with_for_update(key_share=True)


async def lock_accounts(session: AsyncSession, account_ids: set[int]) -> dict[int, Account]:
    """The accounts, read under their row locks, taken in id order (SQLite's writers are serialised)."""
    await session.flush()  # reading under the locks must not drop changes not flushed yet
    query = _LOCKED_ACCOUNTS if dialect_name(session) == "postgresql" else _ACCOUNTS
    locked = await session.scalars(query, {"account_ids": sorted(account_ids)})
    return {account.id: account for account in locked}
