"""Place, cancel and list orders; reset accounts. REST, CLI and signals all place orders through here."""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.accounts.service import Principal
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from quantdesk.core.money import text
from quantdesk.market.models import Instrument
from quantdesk.signals import lifecycle
from quantdesk.trading import broker, prices, resting
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


async def _existing(session: AsyncSession, account: Account, client_order_id: str | None) -> Order | None:
    if client_order_id is None:
        return None
    return await session.scalar(
        select(Order).where(Order.account_id == account.id, Order.client_order_id == client_order_id)
    )


def new_order(body: OrderCreate, instrument: Instrument, source: str, generation: int) -> Order:
    """An order of ``body``'s account, in the account's current ``generation`` (bumped by each reset)."""
    now = utcnow()
    return Order(
        account_id=body.account_id,
        instrument_id=instrument.id,
        symbol=instrument.symbol,
        side=body.side,
        type=body.type,
        time_in_force=body.time_in_force,
        quantity=body.quantity,
        limit_price=body.limit_price,
        stop_price=body.stop_price,
        status="new",
        client_order_id=body.client_order_id,
        leg="entry",
        has_legs=body.take_profit is not None or body.stop_loss is not None,
        source=source,
        generation=generation,
        created_at=now,
        updated_at=now,
        expires_at=_end_of_session(now) if body.time_in_force == "day" and body.type != "market" else None,
    )


def bracket_legs(body: OrderCreate, entry: Order) -> list[Order]:
    exit_side = "sell" if body.side == "buy" else "buy"
    legs = []
    for leg, kind, limit, stop in (
        ("take_profit", "limit", body.take_profit, None),
        ("stop_loss", "stop", None, body.stop_loss),
    ):
        if limit is None and stop is None:
            continue
        legs.append(
            Order(
                account_id=entry.account_id,
                instrument_id=entry.instrument_id,
                symbol=entry.symbol,
                side=exit_side,
                type=kind,
                time_in_force="gtc",
                quantity=entry.quantity,
                limit_price=limit,
                stop_price=stop,
                status="new",
                signal_id=entry.signal_id,
                leg=leg,
                source=entry.source,
                generation=entry.generation,
                created_at=entry.created_at,
                updated_at=entry.created_at,
            )
        )
    return legs


async def add_new_order(session: AsyncSession, order: Order, legs: list[Order]) -> list[Order]:
    """Store a new order and its bracket legs (held until it fills), each with its first event."""
    session.add(order)
    await session.flush()
    for leg in legs:
        leg.parent_id = order.id
    session.add_all(legs)
    await session.flush()
    for new, reason in [(order, None), *((leg, "held until the entry fills") for leg in legs)]:
        session.add(OrderEvent(order_id=new.id, status="new", reason=reason, at=new.created_at))
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
        await broker.execute(session, order, account, instrument, fill_price, deal)
    elif order.time_in_force in ("ioc", "fok"):
        transition(session, order, "canceled", f"{order.time_in_force}: not marketable at {text(market)}")
        for leg in legs:
            transition(session, leg, "canceled", "the entry was canceled")
        await lifecycle.follow(session, order)
    else:
        transition(session, order, "accepted", f"resting: the market is at {text(market)}")


async def place_order(
    session: AsyncSession, caller: Principal, body: OrderCreate, settings: Settings, source: str = "api"
) -> tuple[Order, bool]:
    """The order and whether it was created now (False: the client_order_id was seen before).

    A market order fills at once or the whole request fails (insufficient cash or quantity) with nothing
    stored; a limit or stop order fills at once when marketable, rests otherwise (ioc and fok cancel
    instead of resting)."""
    account = await trading_account(session, caller, body.account_id)
    seen = await _existing(session, account, body.client_order_id)
    if seen is not None:
        return seen, False
    instrument, market = await prices.priced_instrument(session, body.symbol)
    check_quantity(instrument, body.quantity)
    check_prices(body, market)
    order = new_order(body, instrument, source, account.generation)
    legs = await add_new_order(session, order, bracket_legs(body, order))
    await route(session, order, legs, account, instrument, market, resting.terms(settings))
    await session.flush()
    return order, True


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
    await session.execute(delete(Position).where(Position.account_id == account.id))
    accounts.post(session, account, "reset", account.initial_deposit - account.cash, note="account reset")
    account.generation += 1
    account.reset_at = utcnow()
    return account
