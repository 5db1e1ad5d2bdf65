"""Receiving a signal: stored whatever it says, and when valid stored with its order for the broker.

Everything here runs in the receiving request's transaction, so a 202 means the signal and its order
are committed: a crash after it leaves them pending, and a broker worker executes them after restart.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import BigInteger, Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import dialect_name, insert_row
from quantdesk.core.errors import NotFound, ValidationFailed
from quantdesk.core.money import quantize, text
from quantdesk.market.models import Instrument
from quantdesk.realtime.events import QUEUE_STREAM, publish
from quantdesk.signals import lifecycle
from quantdesk.signals.models import Signal
from quantdesk.signals.parser import Distance, InvalidSignal, ParsedSignal, parse
from quantdesk.trading import prices
from quantdesk.trading import service as trading
from quantdesk.trading.models import OPEN_STATUSES, Order, OrderEvent, Position
from quantdesk.trading.schemas import OrderCreate
from quantdesk.trading.status import announce


@dataclass(frozen=True)
class Recipient:
    """The account a signal is for: as much of it as taking the signal needs."""

    account_id: int
    generation: int


@dataclass(frozen=True)
class Receipt:
    outcome: str  # accepted, duplicate or rejected
    signal_id: int  # what the sender is told: for a duplicate, the first copy's id
    stored_id: int  # the row of this message (for a duplicate, the copy's own)
    reason: str | None


@dataclass(frozen=True)
class Plan:
    instrument: Instrument
    order: OrderCreate
    leg: str  # entry, or close: the whole position, sized when the broker executes it


def pip_size(symbol: str) -> Decimal:
    """The usual pip: 0.01 for yen pairs and silver, 0.1 for gold, 0.0001 for other currency pairs."""
    if symbol.endswith("JPY") or symbol.startswith("XAG"):
        return Decimal("0.01")
    if symbol.startswith("XAU"):
        return Decimal("0.1")
    return Decimal("0.0001")


def price_from(distance: Distance, symbol: str, reference: Decimal, direction: int) -> Decimal:
    """A distance in pips, points (whole units of price) or percent of ``reference`` from it, up (+1) or
    down (-1)."""
    if distance.unit == "percent":
        return quantize(reference + direction * reference * distance.value / 100)
    unit = pip_size(symbol) if distance.unit == "pips" else Decimal(1)
    return reference + direction * distance.value * unit


async def receive(
    session: AsyncSession,
    recipient: Recipient,
    body: bytes,
    source: str,
    settings: Settings,
    token_id: int | None = None,
) -> Receipt:
    """Store the signal whatever it says and, when it is valid and new, its order for the broker.

    Rows are written with single INSERTs rather than through the unit of work: this runs once per
    webhook, and a flush costs several times more than the statements it sends."""
    # PostgreSQL text cannot hold NUL; it is the one character not kept as received.
    raw = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    now = utcnow()
    signal = Signal(
        account_id=recipient.account_id,
        token_id=token_id,
        source=source,
        raw_body=raw,
        body_hash=hashlib.sha256(body).hexdigest(),
        take_profit=[],
        received_at=now,
        updated_at=now,
    )
    try:
        parsed = parse(raw)
    except InvalidSignal as invalid:
        return await _store_rejected(session, signal, invalid.detail)
    _describe(signal, parsed)
    await _serialise(session, recipient.account_id, signal.external_id or signal.body_hash)
    first = await _first_copy(session, signal, settings.signal_dedupe_window_s)
    if first is not None:
        return await _store_duplicate(session, signal, first)
    try:
        plan = await _plan(session, recipient, parsed, settings)
    except (ValidationFailed, NotFound) as refused:
        return await _store_rejected(session, signal, refused.detail)
    signal.instrument_id = plan.instrument.id
    signal.status, signal.reason = "pending", "waiting for the broker"
    await insert_row(session, signal)
    order = trading.new_order(plan.order, plan.instrument, "signal", recipient.generation)
    order.signal_id, order.leg = signal.id, plan.leg
    await _store_orders(session, order, trading.bracket_legs(plan.order, order) if plan.leg == "entry" else [])
    signal.order_id = order.id
    await (await session.connection()).execute(_SET_ORDER, {"signal_id": signal.id, "order_id": order.id})
    await lifecycle.record_received(session, signal)
    publish(session, QUEUE_STREAM, {"order_id": order.id})
    return Receipt("accepted", signal.id, signal.id, signal.reason)


async def _store_orders(session: AsyncSession, order: Order, legs: list[Order]) -> None:
    """The signal's order and its bracket legs (held until it fills), each with its first event."""
    await insert_row(session, order)
    for leg in legs:
        leg.parent_id = order.id
        await insert_row(session, leg)
    new = [(order, None), *((leg, "held until the entry fills") for leg in legs)]
    events = [{"order_id": row.id, "status": "new", "reason": reason, "at": row.created_at} for row, reason in new]
    await (await session.connection()).execute(_NEW_ORDER_EVENTS, events)
    for row, _ in new:
        announce(session, row)


def _describe(signal: Signal, parsed: ParsedSignal) -> None:
    signal.external_id = parsed.signal_id[:100] if parsed.signal_id else None
    signal.format, signal.side, signal.symbol = parsed.format, parsed.side, parsed.symbol[:32]
    signal.entry, signal.stop_loss, signal.quantity = parsed.entry, parsed.stop_loss, parsed.quantity
    signal.take_profit = [text(level) for level in parsed.take_profit]
    signal.order_type = parsed.order_type


async def _store_rejected(session: AsyncSession, signal: Signal, reason: str) -> Receipt:
    signal.status, signal.reason = "rejected", reason[:300]
    await insert_row(session, signal)
    await lifecycle.record_received(session, signal)
    return Receipt("rejected", signal.id, signal.id, signal.reason)


async def _store_duplicate(session: AsyncSession, signal: Signal, first: Row[int, str | None]) -> Receipt:
    same = f"the same id '{first.external_id}'" if signal.external_id else "the same body"
    signal.status, signal.duplicate_of, signal.reason = "duplicate", first.id, f"{same} as signal {first.id}"
    await insert_row(session, signal)
    await lifecycle.record_received(session, signal)
    return Receipt("duplicate", first.id, signal.id, signal.reason)


# The hot path's queries, built once (building a statement costs more than running it).
_LOCK_KEY = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_NEW_ORDER_EVENTS = insert(OrderEvent)
_SET_ORDER = update(Signal).where(Signal.id == bindparam("signal_id")).values(order_id=bindparam("order_id"))
_LIVE = (Signal.status != "rejected", Signal.status != "duplicate")
_COPIES = select(Signal.id, Signal.external_id).where(Signal.account_id == bindparam("account_id"), *_LIVE)
_SAME_ID = _COPIES.where(Signal.external_id == bindparam("external_id")).order_by(Signal.id).limit(1)
_SAME_BODY = _COPIES.where(Signal.body_hash == bindparam("body_hash"), Signal.received_at >= bindparam("since"))
_SAME_BODY_ON_TOKEN = _SAME_BODY.where(Signal.token_id == bindparam("token_id")).order_by(Signal.id).limit(1)
_SAME_BODY_BY_API = _SAME_BODY.where(Signal.token_id.is_(None)).order_by(Signal.id).limit(1)


async def _serialise(session: AsyncSession, account_id: int, key: str) -> None:
    """Copies of one signal arriving together (a sender's retry storm) are checked one after the other.
    SQLite's writers are serialised already; PostgreSQL takes a lock on the copy's key alone."""
    if dialect_name(session) == "postgresql":
        digest = hashlib.sha256(f"{account_id}:{key}".encode()).digest()
        await session.execute(_LOCK_KEY, {"key": int.from_bytes(digest[:8], "big", signed=True)})


async def _first_copy(session: AsyncSession, signal: Signal, window_s: float) -> Row[int, str | None] | None:
    """An earlier accepted signal this one repeats: the same id on the account, or the same body on the
    same token (or, through the API, the same account) within the window."""
    values: dict[str, object] = {"account_id": signal.account_id}
    if signal.external_id is not None:
        query, values["external_id"] = _SAME_ID, signal.external_id
    else:
        since = signal.received_at - timedelta(seconds=window_s)
        values |= {"body_hash": signal.body_hash, "since": since, "token_id": signal.token_id}
        query = _SAME_BODY_BY_API if signal.token_id is None else _SAME_BODY_ON_TOKEN
    return (await session.execute(query, values)).first()


async def _plan(session: AsyncSession, recipient: Recipient, parsed: ParsedSignal, settings: Settings) -> Plan:
    instrument, market = await prices.priced_instrument(session, parsed.symbol)
    if parsed.side == "close":
        return await _close_plan(session, recipient.account_id, instrument)
    quantity = parsed.quantity or settings.signal_quantity
    trading.check_quantity(instrument, quantity)
    reference = parsed.entry or market
    direction = 1 if parsed.side == "buy" else -1
    stop_loss = parsed.stop_loss
    if stop_loss is None and parsed.stop_loss_distance is not None:
        stop_loss = price_from(parsed.stop_loss_distance, instrument.symbol, reference, -direction)
    takes = parsed.take_profit or [
        price_from(distance, instrument.symbol, reference, direction) for distance in parsed.take_profit_distances
    ]
    # A limit or stop order rests at the entry; any other signal buys or sells at the market.
    kind = parsed.order_type if parsed.order_type in ("limit", "stop") and parsed.entry is not None else "market"
    body = _order_body(
        account_id=recipient.account_id,
        symbol=instrument.symbol,
        side=parsed.side,
        type=kind,
        quantity=quantity,
        limit_price=parsed.entry if kind == "limit" else None,
        stop_price=parsed.entry if kind == "stop" else None,
        time_in_force="gtc",
        take_profit=takes[0] if takes else None,  # the first target is the bracket's; all are stored
        stop_loss=stop_loss,
    )
    trading.check_prices(body, market)
    return Plan(instrument, body, "entry")


async def _close_plan(session: AsyncSession, account_id: int, instrument: Instrument) -> Plan:
    position = await session.get(Position, (account_id, instrument.id))
    held = position.quantity if position is not None else Decimal(0)
    waiting = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.account_id == account_id, Order.instrument_id == instrument.id, Order.signal_id.is_not(None))
        .where(Order.status.in_(OPEN_STATUSES), Order.leg == "entry")
    )
    if held == 0 and not waiting:
        raise ValidationFailed(f"account {account_id} holds no {instrument.symbol}: there is nothing to close")
    body = _order_body(
        account_id=account_id,
        symbol=instrument.symbol,
        side="buy" if held < 0 else "sell",
        type="market",
        quantity=abs(held) or Decimal(1),  # sized again when it executes
    )
    return Plan(instrument, body, "close")


def _order_body(**fields: object) -> OrderCreate:
    try:
        return OrderCreate.model_validate(fields)
    except ValidationError as wrong:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in wrong.errors())
        raise ValidationFailed(f"the signal cannot be ordered: {problems}") from None
