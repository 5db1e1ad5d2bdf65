"""Reading signals, and what an owner may do to one: cancel it while pending, close its open trade."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.accounts.service import Principal
from quantdesk.core.config import Settings
from quantdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from quantdesk.core.money import text
from quantdesk.signals.lifecycle import close_trade
from quantdesk.signals.models import STATUSES, Signal, SignalEvent
from quantdesk.trading import service as trading
from quantdesk.trading.models import Order
from quantdesk.trading.schemas import OrderCreate


async def default_account(session: AsyncSession, caller: Principal, user_id: int | None = None) -> Account:
    """The account signals go to when none is named: the user's first (the seed routed by user)."""
    if user_id is not None and user_id != caller.user_id:
        raise Forbidden(f"signals go to your own accounts; user {user_id} is someone else")
    account = await session.scalar(select(Account).where(Account.user_id == caller.user_id).order_by(Account.id))
    if account is None:
        raise NotFound("you have no paper account yet; open one with POST /api/v1/accounts")
    return account


async def own_account(session: AsyncSession, caller: Principal, account_id: int) -> Account:
    account = await accounts.get_account(session, account_id, caller)
    if account.user_id != caller.user_id:
        raise Forbidden(f"account {account_id} belongs to another user: admins may read its signals, not send them")
    return account


async def get_signal(session: AsyncSession, caller: Principal, signal_id: int) -> Signal:
    signal = await session.get(Signal, signal_id)
    if signal is None:
        raise NotFound(f"no signal {signal_id}")
    await accounts.get_account(session, signal.account_id, caller)  # 404 for another trader's
    return signal


async def signal_events(session: AsyncSession, signal: Signal) -> list[SignalEvent]:
    query = select(SignalEvent).where(SignalEvent.signal_id == signal.id).order_by(SignalEvent.id)
    return list(await session.scalars(query))


async def list_signals(
    session: AsyncSession,
    caller: Principal,
    account_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Signal]:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"no signal status '{status}'; use one of {', '.join(STATUSES)}")
    query = select(Signal).join(Account, Account.id == Signal.account_id).order_by(Signal.id.desc()).limit(limit)
    if not caller.is_admin:
        query = query.where(Account.user_id == caller.user_id)
    if account_id is not None:
        query = query.where(Signal.account_id == account_id)
    if status is not None:
        query = query.where(Signal.status == status)
    if since is not None:
        query = query.where(Signal.received_at >= since)
    return list(await session.scalars(query))


async def cancel_signal(session: AsyncSession, caller: Principal, signal_id: int) -> Signal:
    """A pending signal's order is canceled (if the broker has not executed it meanwhile)."""
    signal = await get_signal(session, caller, signal_id)
    if signal.status != "pending" or signal.order_id is None:
        raise Conflict(f"signal {signal_id} is {signal.status}; only a pending signal can be cancelled")
    await trading.cancel_order(session, caller, signal.order_id)  # the signal follows its order
    return signal


async def close_signal(session: AsyncSession, caller: Principal, signal_id: int, settings: Settings) -> Signal:
    """Close an open trade at the market now: a market order for the trade's quantity."""
    signal = await get_signal(session, caller, signal_id)
    # Under the account's lock: another close, or a stop-loss or take-profit, may have closed it since.
    await trading.trading_account(session, caller, signal.account_id)
    await session.refresh(signal)
    if signal.status != "executed" or signal.side == "close" or signal.order_id is None:
        raise Conflict(f"signal {signal_id} is {signal.status}; only an executed signal's open trade can be closed")
    entry = await session.get(Order, signal.order_id)
    if entry is None:  # pragma: no cover - orders go with their account
        raise NotFound(f"signal {signal_id} has lost its order")
    body = OrderCreate(
        account_id=signal.account_id,
        symbol=entry.symbol,
        side="sell" if entry.side == "buy" else "buy",
        quantity=entry.filled_quantity,
    )
    exit_order, _ = await trading.place_order(session, caller, body, settings, source="signal")
    await close_trade(
        session, signal, exit_order, f"closed by its owner at {text(exit_order.filled_avg_price or Decimal(0))}"
    )
    return signal
