"""A signal's trade, followed through its orders: pending -> executed -> closed, or rejected / cancelled.

The broker calls ``follow`` in the same transaction whenever an order a signal placed fills, is refused,
canceled or expires, so a signal's status never disagrees with its orders. A trade closes when
its stop-loss or take-profit fills, when a later close or opposite signal's closing order fills, when
its owner closes it, or when the account is reset.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.db import append
from quantdesk.core.money import quantize, text
from quantdesk.realtime.events import publish
from quantdesk.signals import distances
from quantdesk.signals.models import Signal, SignalEvent
from quantdesk.trading.models import OPEN_STATUSES, Order
from quantdesk.trading.status import transition

EXIT_LEGS = {"take_profit": "take-profit", "stop_loss": "stop-loss"}
ENDED = {"rejected": "rejected", "canceled": "cancelled", "expired": "cancelled"}


def signal_view(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.id,
        "account_id": signal.account_id,
        "status": signal.status,
        "reason": signal.reason,
        "source": signal.source,
        "side": signal.side,
        "symbol": signal.symbol,
        "entry": signal.entry,
        "stop_loss": signal.stop_loss,
        "take_profit": signal.take_profit,
        "quantity": signal.quantity,
        "order_id": signal.order_id,
        "entry_price": signal.entry_price,
        "exit_price": signal.exit_price,
        "realized_pnl": signal.realized_pnl,
        "received_at": signal.received_at,
        "executed_at": signal.executed_at,
        "closed_at": signal.closed_at,
        "duplicate_of": signal.duplicate_of,
    }


def record(session: AsyncSession, signal: Signal, status: str, reason: str | None) -> None:
    """The signal's new status, stored with its time and published to its owner."""
    signal.status, signal.reason, signal.updated_at = status, reason, utcnow()
    append(session, SignalEvent, signal_id=signal.id, status=status, reason=reason, at=signal.updated_at)
    publish(session, "signal_updates", {"event": status, "signal": signal_view(signal)}, signal.account_id)


def record_received(session: AsyncSession, signal: Signal) -> None:
    """The first status of a signal just added: its event row, published to its owner."""
    append(session, SignalEvent, signal_id=signal.id, status=signal.status, reason=signal.reason, at=signal.updated_at)
    publish(session, "signal_updates", {"event": signal.status, "signal": signal_view(signal)}, signal.account_id)


async def follow(session: AsyncSession, order: Order) -> None:
    """The order changed: the signal whose trade it belongs to (if a signal placed it) follows."""
    if order.source != "signal":
        return
    signal = await signal_of(session, order)
    if signal is not None:
        await order_changed(session, order, signal)


# Built once: building a statement and its cache key costs about as much as running it (once per order).
_SIGNAL_OF = (
    select(Signal)
    .where(or_(Signal.order_id == bindparam("opened"), Signal.close_order_id == bindparam("order_id")))
    .order_by(Signal.id)
    .limit(1)
)


async def signal_of(session: AsyncSession, order: Order) -> Signal | None:
    """The signal whose trade ``order`` is part of: the one it opens (or, from a close signal, closes), the
    one whose entry it is a bracket leg of, or the one whose reversal closed the position first with it."""
    opened = order.parent_id if order.leg in EXIT_LEGS else order.id
    return (await session.scalars(_SIGNAL_OF, {"opened": opened, "order_id": order.id})).first()


async def order_changed(session: AsyncSession, order: Order, signal: Signal) -> None:
    if order.leg in EXIT_LEGS:
        if order.status == "filled":
            reason = f"{EXIT_LEGS[order.leg]} hit: filled at {_price(order)}"
            await close_trade(session, signal, order, reason)
        return
    own = order.id == signal.order_id
    if order.status == "filled" and order.leg == "close":
        closed = await close_open_trades(session, order, f"closed by signal {signal.id}")
        if own:
            record(session, signal, "executed", f"closed the position ({_trades(closed)})")
    elif order.status == "filled" and own:
        signal.entry_price, signal.executed_at = order.filled_avg_price, order.filled_at
        await _price_legs_from_the_fill(session, signal, order)
        record(session, signal, "executed", f"{order.side} {text(order.quantity)} filled at {_price(order)}")
    elif order.status in ENDED and own and signal.status == "pending":
        record(session, signal, ENDED[order.status], order.reason)


async def _price_legs_from_the_fill(session: AsyncSession, signal: Signal, entry: Order) -> None:
    """Levels the message gave as distances were priced from the entry or the last price when it
    arrived; now that the entry has filled (slippage or a gap may have moved it), its stop-loss and
    take-profit legs are priced from the fill price, and the signal shows the levels its trade has."""
    stop, takes = distances.loaded(signal.distances)
    fill = entry.filled_avg_price
    if fill is None or (stop is None and not takes):
        return
    direction = 1 if entry.side == "buy" else -1
    legs = await session.scalars(select(Order).where(Order.parent_id == entry.id))
    for leg in legs:
        if leg.leg == "stop_loss" and stop is not None:
            price = distances.price_from(stop, entry.symbol, fill, -direction)
            if price > 0:
                leg.stop_price = signal.stop_loss = quantize(price)
        elif leg.leg == "take_profit" and takes:
            price = distances.price_from(takes[0], entry.symbol, fill, direction)
            if price > 0:
                leg.limit_price = quantize(price)
    if takes:
        levels = [distances.price_from(take, entry.symbol, fill, direction) for take in takes]
        signal.take_profit = [text(quantize(level)) for level in levels]


def _price(order: Order) -> str:
    return text(order.filled_avg_price) if order.filled_avg_price is not None else "no price"


def _trades(closed: list[Signal]) -> str:
    return "trades " + ", ".join(str(trade.id) for trade in closed) if closed else "no signal trades were open"


async def open_trades(session: AsyncSession, account_id: int, instrument_id: int) -> list[Signal]:
    query = select(Signal).where(
        Signal.account_id == account_id,
        Signal.instrument_id == instrument_id,
        Signal.status == "executed",
        Signal.side.in_(("buy", "sell")),
    )
    return list(await session.scalars(query.order_by(Signal.id)))


async def close_open_trades(session: AsyncSession, closer: Order, reason: str) -> list[Signal]:
    """Every open trade on the closing order's side of the book: a sell closes the long ones."""
    opposite = "buy" if closer.side == "sell" else "sell"
    trades = [t for t in await open_trades(session, closer.account_id, closer.instrument_id) if t.side == opposite]
    for trade in trades:
        await close_trade(session, trade, closer, reason)
    return trades


async def close_trade(session: AsyncSession, trade: Signal, exit_order: Order, reason: str) -> None:
    """Close the trade at the exit order's fill: net P&L after both commissions; its other legs end."""
    entry = await session.get(Order, trade.order_id)
    if entry is None or trade.entry_price is None or exit_order.filled_avg_price is None:  # pragma: no cover
        return
    quantity = entry.filled_quantity
    direction = 1 if trade.side == "buy" else -1
    share = quantity / exit_order.filled_quantity if exit_order.filled_quantity else Decimal(0)
    gross = (exit_order.filled_avg_price - trade.entry_price) * quantity * direction
    trade.realized_pnl = quantize(gross - entry.commission - exit_order.commission * share)
    trade.exit_price, trade.exit_order_id, trade.closed_at = exit_order.filled_avg_price, exit_order.id, utcnow()
    record(session, trade, "closed", reason)
    publish(session, "trade_updates", {"event": "closed", "signal": signal_view(trade)}, trade.account_id)
    legs = await session.scalars(
        select(Order).where(Order.parent_id == entry.id, Order.id != exit_order.id, Order.status.in_(OPEN_STATUSES))
    )
    for leg in legs:
        transition(session, leg, "canceled", f"its trade (signal {trade.id}) was closed")


async def account_reset(session: AsyncSession, account: Account) -> None:
    """A reset takes the positions out of the books: the open trades end with it, without a P&L."""
    trades = await session.scalars(
        select(Signal).where(Signal.account_id == account.id, Signal.status == "executed", Signal.side != "close")
    )
    for trade in trades:
        trade.closed_at = utcnow()
        record(session, trade, "closed", "the account was reset")
