"""Resting orders against a new price: day orders past their session expire, triggered ones fill."""

from decimal import Decimal

from sqlalchemy import select
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
    """Day orders whose session ended: expired, with the time it ended."""
    query = select(Order).where(RESTING, Order.expires_at <= utcnow())
    if instrument_id is not None:
        query = query.where(Order.instrument_id == instrument_id)
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

    Accounts are locked in id order so that two price updates never deadlock on them.
    """
    await expire_due(session, instrument.id)
    working = list(
        await session.scalars(
            select(Order)
            .where(Order.instrument_id == instrument.id, Order.status == "accepted")
            .order_by(Order.account_id, Order.id)
        )
    )
    filled: list[Order] = []
    deal = deal or terms()
    for order in working:
        if order.type == "stop_limit" and order.stop_triggered_at is None and stop_reached(resting_view(order), price):
            order.stop_triggered_at = utcnow()  # from now on a limit order
        fill_price = execution_price(resting_view(order), price, deal.costs)
        if fill_price is None:
            continue
        account = await lock_account(session, order.account_id)
        try:  # no savepoint: a refused fill has changed nothing
            await broker.execute(session, order, account, instrument, fill_price, deal)
            filled.append(order)
        except InsufficientFunds as refused:
            await broker.reject(session, order, f"triggered at {price} but refused: {refused.detail}")
    return filled


async def lock_account(session: AsyncSession, account_id: int) -> Account:
    await session.flush()
    query = select(Account).where(Account.id == account_id)
    if dialect_name(session) == "postgresql":
        query = query.with_for_update(key_share=True)
    account = await session.scalar(query.execution_options(populate_existing=True))
    if account is None:  # pragma: no cover - orders cascade with their account
        raise LookupError(f"account {account_id} vanished")
    return account
