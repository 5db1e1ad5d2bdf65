"""Receiving signals: each stored whatever it says and, when valid and new, with its order for the broker.

Everything here runs in the receiving transaction, so a 202 means the signal and its order are committed:
a crash after it leaves them pending, and a broker worker executes them after restart. Signals arriving
together (a batch of webhook requests) are received in one transaction: what they read is read once for
all of them, and their rows are inserted together: the orders, then the signals pointing at them.
"""

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.errors import NotFound, QuantdeskError, ValidationFailed
from quantdesk.core.money import text
from quantdesk.market.models import Instrument
from quantdesk.realtime.events import QUEUE_STREAM, publish
from quantdesk.signals import lifecycle
from quantdesk.signals.copies import Copies, Copy
from quantdesk.signals.distances import price_from
from quantdesk.signals.distances import stored as stored_distances
from quantdesk.signals.models import Signal
from quantdesk.signals.parser import InvalidSignal, ParsedSignal, parse
from quantdesk.trading import prices
from quantdesk.trading import service as trading
from quantdesk.trading.models import OPEN_STATUSES, Order, Position
from quantdesk.trading.schemas import OrderCreate


@dataclass(frozen=True)
class Recipient:
    """The account a signal is for: as much of it as taking the signal needs."""

    account_id: int
    generation: int


@dataclass(frozen=True)
class Message:
    """A signal as it arrived: for whom, its body, and how (through a webhook, with its token, or the API)."""

    recipient: Recipient
    body: bytes
    source: str
    token_id: int | None = None


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


async def receive(
    session: AsyncSession,
    recipient: Recipient,
    body: bytes,
    source: str,
    settings: Settings,
    token_id: int | None = None,
) -> Receipt:
    """Store the signal whatever it says and, when it is valid and new, its order for the broker."""
    (receipt,) = await receive_many(session, [Message(recipient, body, source, token_id)], settings)
    return receipt


@dataclass
class _Batch:
    """What the signals of one transaction read once for all: the instruments they name with their last
    prices, the copies they may repeat, and the entries they place (a close in the same batch sees them)."""

    instruments: dict[str, tuple[Instrument, Decimal] | QuantdeskError]
    copies: Copies
    entries: Counter[tuple[int, int]] = field(default_factory=Counter)
    firsts: dict[Signal, Copy | Signal] = field(default_factory=dict)  # each duplicate's first copy


async def receive_many(session: AsyncSession, messages: Sequence[Message], settings: Settings) -> list[Receipt]:
    """``receive`` for many signals in one transaction, one receipt each, in order."""
    if not messages:  # every delivery of the batch was refused before (its token)
        return []
    now = utcnow()
    arrived = [_arrived(message, now, settings.signal_max_level_distance_pct) for message in messages]
    parsed = [(signal, reading) for signal, reading in arrived if isinstance(reading, ParsedSignal)]
    batch = _Batch(
        await prices.priced_instruments(session, {reading.symbol for _, reading in parsed}),
        await Copies.load(session, [signal for signal, _ in parsed], settings.signal_dedupe_window_s),
    )
    plans = [
        await _decide(session, message, signal, reading, batch, settings)
        for message, (signal, reading) in zip(messages, arrived, strict=True)
    ]
    signals = [signal for signal, _ in arrived]
    await _store(session, signals, plans, [message.recipient.generation for message in messages], batch.firsts)
    if any(plan is not None for plan in plans):
        publish(session, QUEUE_STREAM, {})  # wakes the broker workers, once for the orders of the batch
    return [_receipt(signal) for signal in signals]


def _arrived(message: Message, now: datetime, max_level_distance_pct: float) -> tuple[Signal, ParsedSignal | str]:
    """The signal's row as received, not stored yet, and what its body says (or why it says nothing valid)."""
    # PostgreSQL text cannot hold NUL; it is the one character not kept as received.
    raw = message.body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    signal = Signal(
        account_id=message.recipient.account_id,
        token_id=message.token_id,
        source=message.source,
        raw_body=raw,
        body_hash=hashlib.sha256(message.body).hexdigest(),
        take_profit=[],
        received_at=now,
        updated_at=now,
    )
    try:
        reading = parse(raw, max_level_distance_pct)
    except InvalidSignal as invalid:
        return signal, invalid.detail
    _describe(signal, reading)
    return signal, reading


async def _decide(
    session: AsyncSession,
    message: Message,
    signal: Signal,
    reading: ParsedSignal | str,
    batch: _Batch,
    settings: Settings,
) -> Plan | None:
    """What becomes of the signal: rejected or a duplicate (its status says which), or accepted with the
    order it places (returned)."""
    if isinstance(reading, str):
        _reject(signal, reading)
        return None
    first = batch.copies.first_of(signal)
    if first is not None:
        signal.status, batch.firsts[signal] = "duplicate", first
        return None
    try:
        plan = await _plan(session, message.recipient, reading, batch, settings)
    except (ValidationFailed, NotFound) as refused:
        _reject(signal, refused.detail)
        return None
    signal.instrument_id = plan.instrument.id
    signal.status, signal.reason = "pending", "waiting for the broker"
    batch.copies.accept(signal)
    if plan.leg == "entry":
        batch.entries[(signal.account_id, plan.instrument.id)] += 1
    return plan


async def _store(
    session: AsyncSession,
    signals: list[Signal],
    plans: list[Plan | None],
    generations: list[int],
    firsts: dict[Signal, Copy | Signal],
) -> None:
    """Insert the accepted signals' orders, then the signals pointing at them (RETURNING gives both their
    ids), each with its first event."""
    accepted = [
        (signal, plan, generation)
        for signal, plan, generation in zip(signals, plans, generations, strict=True)
        if plan is not None
    ]
    placed = await trading.add_new_orders(
        session,
        [
            (
                trading.new_order(plan.order, plan.instrument, "signal", generation) | {"leg": plan.leg},
                plan.order if plan.leg == "entry" else None,
            )
            for _, plan, generation in accepted
        ],
    )
    for (signal, _, _), (order, _) in zip(accepted, placed, strict=True):
        signal.order_id = order.id
    for signal, first in firsts.items():
        if isinstance(first, Copy):
            _describe_duplicate(signal, first)
    session.add_all(signals)
    await session.flush()
    for signal, first in firsts.items():
        if isinstance(first, Signal):
            _describe_duplicate(signal, first)  # a copy of one of this batch's signals: its id is known now
    for signal in signals:
        lifecycle.record_received(session, signal)


def _describe(signal: Signal, parsed: ParsedSignal) -> None:
    signal.external_id = parsed.signal_id[:100] if parsed.signal_id else None
    signal.format, signal.side, signal.symbol = parsed.format, parsed.side, parsed.symbol[:32]
    signal.entry, signal.stop_loss, signal.quantity = parsed.entry, parsed.stop_loss, parsed.quantity
    signal.take_profit = [text(level) for level in parsed.take_profit]
    signal.order_type = parsed.order_type
    signal.distances = stored_distances(parsed)


def _reject(signal: Signal, reason: str) -> None:
    signal.status, signal.reason = "rejected", reason[:300]


def _describe_duplicate(signal: Signal, first: Copy | Signal) -> None:
    same = f"the same id '{first.external_id}'" if signal.external_id else "the same body"
    signal.duplicate_of, signal.reason = first.id, f"{same} as signal {first.id}"


def _receipt(signal: Signal) -> Receipt:
    """What the sender is told: for a duplicate, the first copy's id."""
    outcome = {"pending": "accepted"}.get(signal.status, signal.status)
    told = signal.duplicate_of if signal.status == "duplicate" and signal.duplicate_of is not None else signal.id
    return Receipt(outcome, told, signal.id, signal.reason)


async def _plan(
    session: AsyncSession, recipient: Recipient, parsed: ParsedSignal, batch: _Batch, settings: Settings
) -> Plan:
    priced = batch.instruments[parsed.symbol.upper()]
    if isinstance(priced, QuantdeskError):
        raise priced
    instrument, market = priced
    if parsed.side == "close":
        return await _close_plan(session, recipient.account_id, instrument, batch)
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


async def _close_plan(session: AsyncSession, account_id: int, instrument: Instrument, batch: _Batch) -> Plan:
    position = await session.get(Position, (account_id, instrument.id))
    held = position.quantity if position is not None else Decimal(0)
    waiting = batch.entries[(account_id, instrument.id)] or await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.account_id == account_id, Order.instrument_id == instrument.id, Order.source == "signal")
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
