"""Place, cancel and list orders; reset accounts. REST, CLI and signals all place orders through here."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.accounts.service import Principal
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import append, insert_returning
from quantdesk.core.errors import Conflict, Forbidden, NotFound, QuantdeskError, ValidationFailed
from quantdesk.core.money import text
from quantdesk.market.models import Instrument
from quantdesk.signals import lifecycle
from quantdesk.trading import broker, cash, prices, resting
from quantdesk.trading.matching import execution_price
from quantdesk.trading.models import OPEN_STATUSES, Order, OrderEvent, Position
from quantdesk.trading.schemas import OrderCreate
from quantdesk.trading.status import announce, transition

CLOSED_STATUSES = ("filled", "canceled", "expired", "rejected")


async def trading_account(session: AsyncSession, caller: Principal, account_id: int) -> Account:
    """The caller's own account, locked for a change; admins read other accounts but do not trade them."""
    account = await accounts.get_account(session, account_id, caller, lock=True)
    if account.user_id != caller.user_id:
        raise Forbidden(f"account {account_id} belongs to another user: admins may read it, not trade it")
    return account


def check_quantity(instrument: Instrument, quantity: Decimal) -> None:
    if not instrument.allows_fractional and quantity != quantity.to_integral_value():
        raise ValidationFailed(
            f"{instrument.symbol} trades in whole units; {text(quantity)} is not whole "
            "(an admin can allow fractions for this asset)"
        )


def check_prices(body: OrderCreate, reference: Decimal) -> None:
    needs_limit, needs_stop = body.type in ("limit", "stop_limit"), body.type in ("stop", "stop_limit")
    if needs_limit != (body.limit_price is not None):
        raise ValidationFailed(f"a {body.type} order {'needs' if needs_limit else 'takes no'} limit_price")
    if needs_stop != (body.stop_price is not None):
        raise ValidationFailed(f"a {body.type} order {'needs' if needs_stop else 'takes no'} stop_price")
    entry = body.limit_price or body.stop_price or reference
    above, below = (body.take_profit, body.stop_loss) if body.side == "buy" else (body.stop_loss, body.take_profit)
    if above is not None and above <= entry:
        name = "take_profit" if body.side == "buy" else "stop_loss"
        raise ValidationFailed(f"for a {body.side} at {text(entry)}, {name} must be above it; it is {text(above)}")
    if below is not None and below >= entry:
        name = "stop_loss" if body.side == "buy" else "take_profit"
        raise ValidationFailed(f"for a {body.side} at {text(entry)}, {name} must be below it; it is {text(below)}")


def _end_of_session(now: datetime) -> datetime:
    """Day orders end at the next midnight UTC (one session per UTC day, for every market)."""
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def new_order(body: OrderCreate, instrument: Instrument, source: str, generation: int) -> dict[str, Any]:
    """The values of a new order of ``body``'s account, in the account's current ``generation`` (bumped by
    each reset), for ``add_new_order`` or ``add_new_orders``."""
    now = utcnow()
    return {
        "account_id": body.account_id,
        "instrument_id": instrument.id,
        "symbol": instrument.symbol,
        "side": body.side,
        "type": body.type,
        "time_in_force": body.time_in_force,
        "quantity": body.quantity,
        "limit_price": body.limit_price,
        "stop_price": body.stop_price,
        "status": "new",
        "client_order_id": body.client_order_id,
        "leg": "entry",
        "has_legs": body.take_profit is not None or body.stop_loss is not None,
        "source": source,
        "generation": generation,
        "created_at": now,
        "updated_at": now,
        "expires_at": _end_of_session(now) if body.time_in_force == "day" and body.type != "market" else None,
    }


def bracket_legs(body: OrderCreate, entry: Order) -> list[dict[str, Any]]:
    """The values of the entry's take-profit and stop-loss orders, held until it fills."""
    exit_side = "sell" if body.side == "buy" else "buy"
    legs = []
    for leg, kind, limit, stop in (
        ("take_profit", "limit", body.take_profit, None),
        ("stop_loss", "stop", None, body.stop_loss),
    ):
        if limit is None and stop is None:
            continue
        legs.append(
            {
                "account_id": entry.account_id,
                "instrument_id": entry.instrument_id,
                "symbol": entry.symbol,
                "side": exit_side,
                "type": kind,
                "time_in_force": "gtc",
                "quantity": entry.quantity,
                "limit_price": limit,
                "stop_price": stop,
                "status": "new",
                "reason": "held until the entry fills",
                "parent_id": entry.id,
                "leg": leg,
                "source": entry.source,
                "generation": entry.generation,
                "created_at": entry.created_at,
                "updated_at": entry.created_at,
            }
        )
    return legs


NewOrder = tuple[dict[str, Any], OrderCreate | None]  # an order's values, and the body whose legs it has


async def add_new_orders(session: AsyncSession, new: Sequence[NewOrder]) -> list[tuple[Order, list[Order]]]:
    """Insert new orders (``new_order``) with the bracket legs their bodies ask for, each with its first
    event: the orders in one statement, then the legs in one (they refer to their entries' ids). For a
    batch whose ids are needed at once (signals point at their orders)."""
    entries = await insert_returning(session, Order, [values for values, _ in new])
    wanted = [
        bracket_legs(body, entry) if body is not None else [] for entry, (_, body) in zip(entries, new, strict=True)
    ]
    stored = iter(await insert_returning(session, Order, [leg for legs in wanted for leg in legs]))
    placed = [(entry, [next(stored) for _ in legs]) for entry, legs in zip(entries, wanted, strict=True)]
    for order in (order for entry, legs in placed for order in (entry, *legs)):
        append(session, OrderEvent, order_id=order, status="new", reason=order.reason, at=order.created_at)
        announce(session, order)
    return placed


async def add_new_order(session: AsyncSession, order: Order, body: OrderCreate | None) -> list[Order]:
    """Add a new order (made from ``new_order``'s values) to the session with the bracket legs ``body``
    asks for, each with its first event; returns the legs. The order is written with the transaction's
    other rows (its id comes then: ``core.db.id_of``), unless it has legs, which need its id at once."""
    session.add(order)
    legs = []
    if body is not None and order.has_legs:
        await session.flush()
        legs = [Order(**values) for values in bracket_legs(body, order)]
        session.add_all(legs)
    for new in (order, *legs):
        append(session, OrderEvent, order_id=new, status="new", reason=new.reason, at=new.created_at)
        announce(session, new)
    return legs


async def route(
    session: AsyncSession,
    order: Order,
    legs: list[Order],
    account: Account,
    instrument: Instrument,
    market: Decimal,
    deal: broker.Terms,
) -> None:
    """Fill a new order now if the market allows, else rest it (ioc and fok cancel instead).
    Raises InsufficientFunds, having changed nothing, when a fill is due but cannot be paid."""
    fill_price = execution_price(resting.resting_view(order), market, deal.costs)
    if fill_price is not None:
        await broker.execute(session, order, account, instrument, fill_price, deal, legs)
    elif order.time_in_force in ("ioc", "fok"):
        transition(session, order, "canceled", f"{order.time_in_force}: not marketable at {text(market)}")
        for leg in legs:
            transition(session, leg, "canceled", "the entry was canceled")
        await lifecycle.follow(session, order)
    else:
        transition(session, order, "accepted", f"resting: the market is at {text(market)}")


@dataclass(frozen=True)
class OrderRequest:
    """One order to place: who places it, what, and through which interface."""

    caller: Principal
    body: OrderCreate
    source: str = "api"


Placed = tuple[Order, bool]  # the order, and whether it was created now (False: its client_order_id was seen)


async def place_order(
    session: AsyncSession, caller: Principal, body: OrderCreate, settings: Settings, source: str = "api"
) -> Placed:
    """The order and whether it was created now (False: the client_order_id was seen before).

    A market order fills at once or the whole request fails (insufficient cash or quantity) with nothing
    stored; a limit or stop order fills at once when marketable, rests otherwise (ioc and fok cancel
    instead of resting)."""
    (outcome,) = await place_orders(session, [OrderRequest(caller, body, source)], settings)
    if isinstance(outcome, QuantdeskError):
        raise outcome
    return outcome


async def place_orders(
    session: AsyncSession, requests: Sequence[OrderRequest], settings: Settings
) -> list[Placed | QuantdeskError]:
    """``place_order`` for many orders in one transaction (a batch of concurrent requests): what they
    read is read once for all of them, and what they write is flushed together. Each gets its own
    outcome, in order; a refused order has added nothing to the session, so the others go on."""
    if not requests:  # every order of the batch was refused before (its key)
        return []
    batch = await _Batch.load(session, requests)
    deal = resting.terms(settings)
    outcomes: list[Placed | QuantdeskError] = []
    for request in requests:
        try:
            outcomes.append(await _place(session, request, batch, deal))
        except QuantdeskError as refused:
            outcomes.append(refused)
    return outcomes


@dataclass(frozen=True)
class KeyedOrder:
    """An order of an HTTP request, with the API key that signs it (checked in the batch's transaction)."""

    api_key: str
    body: OrderCreate


async def place_keyed_orders(
    session: AsyncSession, orders: Sequence[KeyedOrder], settings: Settings
) -> list[Placed | QuantdeskError]:
    """``place_orders`` for the orders of concurrent HTTP requests: their keys are checked together first,
    and an order whose key is refused gets that refusal."""
    callers = await accounts.authenticate_many(session, {order.api_key for order in orders})
    signed = [
        OrderRequest(caller, order.body) for order in orders if isinstance(caller := callers[order.api_key], Principal)
    ]
    placed = iter(await place_orders(session, signed, settings))
    return [
        next(placed) if isinstance(caller := callers[order.api_key], Principal) else dataclasses.replace(caller)
        for order in orders
    ]


@dataclass
class _Batch:
    """What the orders of a batch read, once for all: their accounts (locked), instruments and prices,
    positions and earlier orders with their client_order_ids. Held here for the batch, since the
    session's identity map keeps no object alive on its own."""

    accounts: dict[int, Account]
    instruments: dict[str, tuple[Instrument, Decimal] | QuantdeskError]
    seen: dict[tuple[int, str], Order]
    positions: list[Position]

    @classmethod
    async def load(cls, session: AsyncSession, requests: Sequence[OrderRequest]) -> "_Batch":
        bodies = [request.body for request in requests]
        accounts = await resting.lock_accounts(session, {body.account_id for body in bodies})
        instruments = await prices.priced_instruments(session, {body.symbol for body in bodies})
        pairs = {
            (body.account_id, found[0].id)
            for body in bodies
            if not isinstance(found := instruments[body.symbol.upper()], QuantdeskError)
        }
        keyed = {(body.account_id, body.client_order_id) for body in bodies if body.client_order_id is not None}
        seen = await _orders_by_client_id(session, keyed)
        positions = await broker.load_positions(session, pairs)
        return cls(accounts, instruments, seen, positions)


async def _orders_by_client_id(session: AsyncSession, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Order]:
    if not keys:
        return {}
    query = select(Order).where(tuple_(Order.account_id, Order.client_order_id).in_(sorted(keys)))
    return {(order.account_id, order.client_order_id or ""): order for order in await session.scalars(query)}


async def _place(session: AsyncSession, request: OrderRequest, batch: _Batch, deal: broker.Terms) -> Placed:
    body, caller = request.body, request.caller
    account = _tradable(batch.accounts.get(body.account_id), caller, body.account_id)
    key = (account.id, body.client_order_id or "")
    if body.client_order_id is not None and key in batch.seen:
        return batch.seen[key], False
    found = batch.instruments[body.symbol.upper()]
    if isinstance(found, QuantdeskError):
        raise dataclasses.replace(found)  # each refused order its own error
    instrument, market = found
    check_quantity(instrument, body.quantity)
    check_prices(body, market)
    order = Order(**new_order(body, instrument, request.source, account.generation))
    fill_price = execution_price(resting.resting_view(order), market, deal.costs)
    if fill_price is not None:  # refused before anything of the order is added
        await broker.check_affordable(session, order, account, instrument, fill_price, deal)
    legs = await add_new_order(session, order, body)
    await route(session, order, legs, account, instrument, market, deal)
    if body.client_order_id is not None:
        batch.seen[key] = order
    return order, True


def _tradable(account: Account | None, caller: Principal, account_id: int) -> Account:
    """The caller's own account; another trader's is reported missing, and admins read others' accounts
    but do not trade them."""
    if account is None or not caller.may_see(account.user_id):
        raise NotFound(f"no account {account_id}")
    if account.user_id != caller.user_id:
        raise Forbidden(f"account {account_id} belongs to another user: admins may read it, not trade it")
    return account


async def get_order(session: AsyncSession, caller: Principal, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    await accounts.get_account(session, order.account_id, caller)  # 404 for another trader's order
    return order


async def order_events(session: AsyncSession, order: Order) -> list[OrderEvent]:
    return list(
        await session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))
    )


async def order_legs(session: AsyncSession, order: Order) -> list[Order]:
    if order.leg == "entry" and not order.has_legs:
        return []
    return list(await session.scalars(select(Order).where(Order.parent_id == order.id).order_by(Order.id)))


async def cancel_order(session: AsyncSession, caller: Principal, order_id: int) -> Order:
    order = await get_order(session, caller, order_id)
    await trading_account(session, caller, order.account_id)
    # Under the account's lock: a broker or a price update may have filled it since it was read.
    await session.refresh(order)
    if order.status not in OPEN_STATUSES:
        raise Conflict(f"order {order_id} is {order.status}; only open orders can be canceled")
    transition(session, order, "canceled", "canceled by its owner")
    for leg in await order_legs(session, order):
        if leg.status in OPEN_STATUSES:
            transition(session, leg, "canceled", "its entry was canceled")
    await lifecycle.follow(session, order)
    return order


async def list_orders(
    session: AsyncSession,
    caller: Principal,
    account_id: int | None = None,
    status: str = "all",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[Order]:
    await resting.expire_due(session)
    query = select(Order).join(Account, Account.id == Order.account_id).order_by(Order.id.desc()).limit(limit)
    if not caller.is_admin:
        query = query.where(Account.user_id == caller.user_id)
    if account_id is not None:
        query = query.where(Order.account_id == account_id)
    if status == "open":
        query = query.where(Order.status.in_(OPEN_STATUSES))
    elif status == "closed":
        query = query.where(Order.status.in_(CLOSED_STATUSES))
    elif status != "all":
        query = query.where(Order.status == status)
    if since is not None:
        query = query.where(Order.created_at >= since)
    if until is not None:
        query = query.where(Order.created_at < until)
    return list(await session.scalars(query))


async def reset_account(session: AsyncSession, caller: Principal, account_id: int) -> Account:
    """Back to the opening deposit: open orders canceled, positions closed out of the books (their history
    stays, marked with the old generation), one ledger row restoring the cash."""
    account = await trading_account(session, caller, account_id)
    working = await session.scalars(
        select(Order).where(Order.account_id == account.id, Order.status.in_(OPEN_STATUSES))
    )
    for order in working:
        transition(session, order, "canceled", "the account was reset")
        await lifecycle.follow(session, order)
    await lifecycle.account_reset(session, account)
    equity_before = await cash.equity(session, account)
    await session.execute(delete(Position).where(Position.account_id == account.id))
    accounts.post(
        session,
        account,
        "reset",
        account.initial_deposit - account.cash,
        note="account reset",
        equity_before=equity_before,
    )
    account.generation += 1
    account.reset_at = utcnow()
    return account
