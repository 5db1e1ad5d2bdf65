"""Last prices: set by a newer bar, a tick or an admin; every change triggers the resting orders."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.errors import NotFound, ValidationFailed
from quantdesk.core.money import quantize
from quantdesk.core.types import from_epoch_us
from quantdesk.market.models import Bar, Instrument
from quantdesk.realtime.events import publish
from quantdesk.trading.models import Price


async def last_price(session: AsyncSession, instrument: Instrument) -> Price | None:
    """The stored last price, or else the close of the newest stored bar (bars ingested before prices
    were kept)."""
    stored = await session.get(Price, instrument.id, populate_existing=True)
    if stored is not None:
        return stored
    newest = await session.execute(
        select(Bar.ts, Bar.close).where(Bar.instrument_id == instrument.id).order_by(Bar.ts.desc()).limit(1)
    )
    row = newest.first()
    if row is None:
        return None
    return Price(instrument_id=instrument.id, price=quantize(Decimal(repr(row.close))), source="bar", at=row.ts)


# Built once: the hot path of every order.
_PRICED = select(Instrument, Price).outerjoin(Price, Price.instrument_id == Instrument.id)
_PRICED_BY_SYMBOL = _PRICED.where(Instrument.symbol == bindparam("symbol"))
_PRICED_BY_ID = _PRICED.where(Instrument.id == bindparam("instrument_id")).execution_options(populate_existing=True)


async def priced_instrument(session: AsyncSession, symbol: str) -> tuple[Instrument, Decimal]:
    """The instrument and its last price in one query (the hot path of every order)."""
    found = await session.execute(_PRICED_BY_SYMBOL, {"symbol": symbol.upper()})
    pair = found.first()
    if pair is None:
        raise NotFound(f"no instrument '{symbol.upper()}'; admins create assets with POST /api/v1/assets")
    return await _with_price(session, *pair)


async def priced_instrument_by_id(session: AsyncSession, instrument_id: int) -> tuple[Instrument, Decimal]:
    """An order's instrument and its current last price (read again: another transaction may have moved it)."""
    instrument, price = (await session.execute(_PRICED_BY_ID, {"instrument_id": instrument_id})).one()
    return await _with_price(session, instrument, price)


async def _with_price(session: AsyncSession, instrument: Instrument, price: Price | None) -> tuple[Instrument, Decimal]:
    # No stored last price: the newest bar's close, else the instrument is not tradable yet.
    return instrument, price.price if price is not None else await require_price(session, instrument)


async def require_price(session: AsyncSession, instrument: Instrument) -> Decimal:
    price = await last_price(session, instrument)
    if price is None:
        raise ValidationFailed(
            f"{instrument.symbol} has no price yet: ingest bars, post a tick, or have an admin set a price"
        )
    return price.price


async def set_price(
    session: AsyncSession,
    instrument: Instrument,
    price: Decimal,
    source: str,
    at: datetime | None = None,
    settings: Settings | None = None,
) -> int:
    """Store a new last price (a bar older than the current price changes nothing) and fill the resting
    orders it triggers; returns how many filled."""
    from quantdesk.trading.resting import on_price  # resting imports the broker, which needs prices

    at = at or utcnow()
    current = await session.get(Price, instrument.id)
    if current is None:
        current = Price(instrument_id=instrument.id, price=quantize(price), source=source, at=at)
        session.add(current)
    elif source == "bar" and at < current.at:
        return 0
    else:
        current.price, current.source, current.at = quantize(price), source, at
    await session.flush()
    publish(
        session,
        f"ticks:{instrument.symbol}",
        {"symbol": instrument.symbol, "price": current.price, "source": source, "at": current.at},
    )
    from quantdesk.trading.resting import terms

    return len(await on_price(session, instrument, current.price, terms(settings)))


async def note_bar(session: AsyncSession, instrument: Instrument, closed_us: int, close: float) -> None:
    """Called after bars are stored: the newest bar's close becomes the last price unless the current
    price is newer than the bar's end (a day's bar ends at midnight; a bar still open ends now)."""
    await set_price(session, instrument, Decimal(repr(close)), "bar", min(from_epoch_us(closed_us), utcnow()))


@dataclass(frozen=True)
class Quote:
    price: Decimal
    at: datetime
    previous_close: Decimal | None

    @property
    def change(self) -> Decimal | None:
        return None if self.previous_close is None else self.price - self.previous_close

    @property
    def change_pct(self) -> float | None:
        if self.previous_close is None or self.previous_close == 0:
            return None
        return float((self.price / self.previous_close - 1) * 100)


async def quote(session: AsyncSession, instrument: Instrument) -> Quote | None:
    """The last price and its change since the close before its day (UTC) began: a price stamped at
    midnight is the close of the day that ends then, so it is compared with the close before that day."""
    last = await last_price(session, instrument)
    if last is None:
        return None
    day = (last.at - timedelta(microseconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    before = await session.scalar(
        select(Bar.close).where(Bar.instrument_id == instrument.id, Bar.ts < day).order_by(Bar.ts.desc()).limit(1)
    )
    return Quote(last.price, last.at, None if before is None else quantize(Decimal(repr(before))))
