"""The paper broker: fills an order against an account in the caller's transaction, or refuses it.

One fill writes, together: the position, the fill, the ledger rows (trade and commission), the order's
new status with its event, the gems, and the bracket legs it activates or cancels. Nothing is written
here: the changed rows wait in the session and the new ones (``core.db.append``) for the commit, so the
fills of a batch of orders are written together.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, event, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.db import append
from quantdesk.core.errors import InsufficientFunds
from quantdesk.core.money import quantize, text
from quantdesk.gamification.awards import award_trade
from quantdesk.market.models import Instrument
from quantdesk.signals import lifecycle
from quantdesk.trading import margin
from quantdesk.trading.matching import Costs, apply_fill
from quantdesk.trading.models import OPEN_STATUSES, Fill, Order, Position
from quantdesk.trading.status import transition


@dataclass(frozen=True)
class Terms:
    costs: Costs
    milestones: dict[int, int]


_UNSTORED_KEY = "quantdesk_unstored_positions"  # per session: (account, instrument) -> a position not stored yet


async def position_of(session: AsyncSession, account: Account, instrument: Instrument) -> tuple[Position, bool]:
    """The account's position in the instrument, and whether it is stored. One not stored yet is a new
    empty one, left out of the session: the caller adds it once the fill is certain. The session keeps it,
    so a later fill of the same transaction (the next order of a batch) goes on from it."""
    key = (account.id, instrument.id)
    unstored: dict[tuple[int, int], Position] = session.info.setdefault(_UNSTORED_KEY, {})
    if key in unstored:
        return unstored[key], False
    # Read after the account's lock: the row is current. One already loaded in this transaction (an
    # earlier fill of the same price update) is this transaction's own, newer than the table's.
    position = await session.get(Position, key)
    if position is not None:
        return position, True
    unstored[key] = _empty_position(*key)
    return unstored[key], False


def _empty_position(account_id: int, instrument_id: int) -> Position:
    zero = Decimal(0)
    return Position(account_id=account_id, instrument_id=instrument_id, quantity=zero, avg_cost=zero, realized_pnl=zero)


# Built once: building a statement and its cache key costs about as much as running it.
_POSITIONS = (
    select(Position)
    .where(tuple_(Position.account_id, Position.instrument_id).in_(bindparam("pairs", expanding=True)))
    .execution_options(populate_existing=True)
)


async def load_positions(session: AsyncSession, pairs: set[tuple[int, int]]) -> list[Position]:
    """The positions of (account, instrument) ``pairs`` in one query, for the fills of a batch; the caller
    holds the list while it fills (the session's identity map does not keep objects alive)."""
    if not pairs:
        return []
    stored = list(await session.scalars(_POSITIONS, {"pairs": sorted(pairs)}))
    unstored: dict[tuple[int, int], Position] = session.info.setdefault(_UNSTORED_KEY, {})
    for missing in pairs - {(p.account_id, p.instrument_id) for p in stored}:
        unstored.setdefault(missing, _empty_position(*missing))
    return stored


@event.listens_for(Session, "after_transaction_end")
def _forget_unstored(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_UNSTORED_KEY, None)


async def check_affordable(
    session: AsyncSession, order: Order, account: Account, instrument: Instrument, price: Decimal, terms: Terms
) -> None:
    """Raise InsufficientFunds if the account cannot take the fill of ``order`` at ``price`` now (what
    ``execute`` checks first): a new order is refused before anything of it is stored."""
    position, _ = await position_of(session, account, instrument)
    notional = quantize(order.quantity * price)
    fee = terms.costs.commission(notional)
    _check_affordable(order, account, position, price, notional, fee)
    await _check_margin(session, order, account, position, price, notional - fee)


async def _check_margin(
    session: AsyncSession, order: Order, account: Account, position: Position, price: Decimal, proceeds: Decimal
) -> None:
    """A sale that opens or adds to a short must leave the equity the margin rule asks for."""
    after = position.quantity - order.quantity
    if order.side == "sell" and after < 0:
        await margin.check_short_sale(session, account, position.instrument_id, after, price, account.cash + proceeds)


def _check_affordable(
    order: Order, account: Account, position: Position, price: Decimal, notional: Decimal, fee: Decimal
) -> None:
    if order.side == "buy" and notional + fee > account.cash:
        raise InsufficientFunds(
            f"buying {text(order.quantity)} {order.symbol} at {text(price)} costs {text(notional + fee)} with "
            f"commission; account {account.id} has {text(account.cash)} {account.currency}"
        )
    if order.side == "sell" and not account.allow_short and order.quantity > position.quantity:
        raise InsufficientFunds(
            f"cannot sell {text(order.quantity)} {order.symbol}: account {account.id} holds "
            f"{text(position.quantity)}, and short selling is off for this account"
        )
    if order.side == "sell" and fee > account.cash + notional:
        raise InsufficientFunds(f"account {account.id} cannot pay the commission of {text(fee)}")


async def execute(
    session: AsyncSession,
    order: Order,
    account: Account,
    instrument: Instrument,
    price: Decimal,
    terms: Terms,
    legs: Sequence[Order] | None = None,
) -> None:
    """Fill the whole order at ``price`` or raise InsufficientFunds having changed nothing: callers that
    go on after a refusal (the broker worker, price updates) need no savepoint to undo it. ``legs``: the
    entry's bracket legs when the caller has them (new ones are not in the database yet), else they are
    read."""
    position, stored = await position_of(session, account, instrument)
    notional = quantize(order.quantity * price)
    fee = terms.costs.commission(notional)
    _check_affordable(order, account, position, price, notional, fee)
    await _check_margin(session, order, account, position, price, notional - fee)
    if not stored:
        session.add(position)
    holding = apply_fill(position.quantity, position.avg_cost, order.side, order.quantity, price)
    position.quantity, position.avg_cost = holding.quantity, holding.avg_cost
    position.realized_pnl = quantize(position.realized_pnl + holding.realized)
    position.updated_at = utcnow()
    sign = -1 if order.side == "buy" else 1
    what = f"{order.side} {text(order.quantity)} {order.symbol}"
    accounts.post(session, account, "trade", sign * notional, order, what)
    if fee:
        accounts.post(session, account, "commission", -fee, order, f"commission on {what}")
    at = utcnow()
    fill = append(
        session,
        Fill,
        numbered=True,
        order_id=order,
        account_id=account.id,
        instrument_id=instrument.id,
        side=order.side,
        quantity=order.quantity,
        price=price,
        commission=fee,
        realized_pnl=holding.realized,
        generation=account.generation,
        at=at,
    )
    order.filled_quantity, order.filled_avg_price, order.commission = order.quantity, price, fee
    order.total, order.filled_at = quantize(sign * notional - fee), at
    # Alpaca's execution_id: the fill's id, which the event says once the transaction has written it.
    transition(session, order, "filled", fill={"execution_id": fill, "position_qty": position.quantity})
    await award_trade(session, account.user_id, account.id, order, terms.milestones)
    await _after_fill(session, order, legs)
    await lifecycle.follow(session, order)


async def _after_fill(session: AsyncSession, order: Order, legs: Sequence[Order] | None) -> None:
    """An entry's fill arms its bracket legs; an exit's fill cancels the other leg (one cancels other)."""
    if order.leg == "entry":
        if not order.has_legs:
            return
        if legs is None:
            legs = list(await session.scalars(select(Order).where(Order.parent_id == order.id)))
        for leg in legs:
            if leg.status == "new":
                transition(session, leg, "accepted", "the entry filled: the bracket leg is working")
        return
    if order.parent_id is None:  # a close order of a signal: no bracket, no sibling (`== None` matches every order)
        return
    siblings = await session.scalars(
        select(Order).where(
            Order.parent_id == order.parent_id,
            Order.account_id == order.account_id,
            Order.id != order.id,
            Order.status.in_(OPEN_STATUSES),
        )
    )
    for sibling in siblings:
        transition(session, sibling, "canceled", f"the other bracket leg (order {order.id}) filled")


async def reject(session: AsyncSession, order: Order, reason: str) -> None:
    transition(session, order, "rejected", reason)
    await lifecycle.follow(session, order)
