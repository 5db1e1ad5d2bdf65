"""Last prices: set by a newer bar, a tick or an admin; every change triggers the resting orders."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import dialect_insert
from quantdesk.core.errors import NotFound, QuantdeskError, ValidationFailed
from quantdesk.core.money import quantize
from quantdesk.core.types import from_epoch_us, to_epoch_us
from quantdesk.market import repository
from quantdesk.market.models import Instrument
from quantdesk.realtime.events import publish
from quantdesk.trading.models import Price


async def last_price(session: AsyncSession, instrument: Instrument) -> Price | None:
    """The stored last price, or else the close of the newest stored bar (bars ingested before prices
    were kept)."""
    stored = await session.get(Price, instrument.id, populate_existing=True)
    if stored is not None:
        return stored
    return (await _newest_closes(session, [instrument.id])).get(instrument.id)


async def last_prices(session: AsyncSession, instruments: Sequence[Instrument]) -> dict[int, Price]:
    """``last_price`` of many instruments at once, by instrument id (those with no price are left out):
    two queries whatever their number."""
    ids = [instrument.id for instrument in instruments]
    if not ids:
        return {}
    query = select(Price).where(Price.instrument_id.in_(ids)).execution_options(populate_existing=True)
    found = {price.instrument_id: price for price in await session.scalars(query)}
    return found | await _newest_closes(session, [i for i in ids if i not in found])


async def _newest_closes(session: AsyncSession, instrument_ids: list[int]) -> dict[int, Price]:
    newest = await repository.latest_bars(session, instrument_ids)
    return {
        instrument_id: Price(
            instrument_id=instrument_id, price=quantize(Decimal(repr(bar.close))), source="bar", at=bar.ts
        )
        for instrument_id, bar in newest.items()
    }


async def closes_before(session: AsyncSession, instrument_ids: Sequence[int], before: datetime) -> dict[int, Decimal]:
    """Each instrument's last close among the bars opened before ``before`` (those with none are left out)."""
    bars = await repository.latest_bars(session, instrument_ids, before=before)
    return {instrument_id: quantize(Decimal(repr(bar.close))) for instrument_id, bar in bars.items()}


# Built once: the hot path of every order.
_PRICED = select(Instrument, Price).outerjoin(Price, Price.instrument_id == Instrument.id)
_PRICED_BY_SYMBOLS = _PRICED.where(Instrument.symbol.in_(bindparam("symbols", expanding=True)))
_PRICED_BY_ID = _PRICED.where(Instrument.id == bindparam("instrument_id")).execution_options(populate_existing=True)


async def priced_instrument(session: AsyncSession, symbol: str) -> tuple[Instrument, Decimal]:
    """The instrument and its last price in one query (the hot path of every order)."""
    found = (await priced_instruments(session, {symbol}))[symbol.upper()]
    if isinstance(found, QuantdeskError):
        raise found
    return found


async def priced_instruments(
    session: AsyncSession, symbols: set[str]
) -> dict[str, tuple[Instrument, Decimal] | QuantdeskError]:
    """``priced_instrument`` of many symbols in one query (the orders of a batch), by upper-case symbol:
    the instrument and its last price, or the error an order in it gets."""
    wanted = {symbol.upper() for symbol in symbols}
    found: dict[str, tuple[Instrument, Decimal] | QuantdeskError] = {
        symbol: NotFound(f"no instrument '{symbol}'; admins create assets with POST /api/v1/assets")
        for symbol in wanted
    }
    for instrument, price in (await session.execute(_PRICED_BY_SYMBOLS, {"symbols": sorted(wanted)})).all():
        try:
            found[instrument.symbol] = await _with_price(session, instrument, price)
        except ValidationFailed as unpriced:
            found[instrument.symbol] = unpriced
    return found


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
    if quantize(price) <= 0:
        # A price of 0 fills any quantity for free (and divides returns by zero): no trading at it.
        taken = "a bar's close" if source == "bar" else "a price"
        raise ValidationFailed(
            f"{taken} of {price:f} for {instrument.symbol} rounds to 0 at 8 decimal places, and quantdesk does "
            "not trade at a price of 0; quote the instrument in a smaller unit (e.g. per 1,000,000) instead"
        )
    current = await session.get(Price, instrument.id) or await _first_price(session, instrument, price, source, at)
    if source == "bar" and at < current.at:
        return 0
    current.price, current.source, current.at = quantize(price), source, at
    await session.flush()
    publish(
        session,
        f"ticks:{instrument.symbol}",
        {"symbol": instrument.symbol, "price": current.price, "source": source, "at": current.at},
    )
    from quantdesk.trading.resting import terms

    return len(await on_price(session, instrument, current.price, terms(settings)))


async def _first_price(
    session: AsyncSession, instrument: Instrument, price: Decimal, source: str, at: datetime
) -> Price:
    """The instrument's price row, stored now. Two first prices arriving together both insert it: the
    second insert waits for the first to commit and then does nothing, and that price is updated."""
    values = {"instrument_id": instrument.id, "price": quantize(price), "source": source, "at": at}
    await session.execute(dialect_insert(session, Price).values(values).on_conflict_do_nothing())
    stored = await session.get(Price, instrument.id, populate_existing=True)
    if stored is None:  # pragma: no cover - inserted, or found inserted by a concurrent price
        raise LookupError(f"the price of {instrument.symbol} vanished")
    return stored


async def note_bar(session: AsyncSession, instrument: Instrument, closed_us: int, close: float) -> None:
    """Called after bars are stored: the newest bar's close becomes the last price unless the current
    price is newer than the bar's end (a day's bar ends at midnight; a bar still open ends now)."""
    now = utcnow()
    # Compared in microseconds: the end of a bar on 9999-12-31 is not a datetime.
    at = now if closed_us >= to_epoch_us(now) else from_epoch_us(closed_us)
    await set_price(session, instrument, Decimal(repr(close)), "bar", at)


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
    return (await quotes(session, [instrument])).get(instrument.id)


async def quotes(session: AsyncSession, instruments: Sequence[Instrument]) -> dict[int, Quote]:
    """The last price of each instrument and its change since the close before its day (UTC) began: a
    price stamped at midnight is the close of the day that ends then, so it is compared with the close
    before that day. Three queries whatever the number of instruments (the markets page lists them all),
    one more for each further day among their last prices; instruments with no price yet are left out."""
    lasts = await last_prices(session, instruments)
    by_day: dict[datetime, list[int]] = defaultdict(list)
    for instrument_id, last in lasts.items():
        by_day[_day_of(last.at)].append(instrument_id)
    previous: dict[int, Decimal] = {}
    for day, ids in by_day.items():  # the last prices of a market mostly share one day
        previous |= await closes_before(session, ids, day)
    return {i: Quote(last.price, last.at, previous.get(i)) for i, last in lasts.items()}


def _day_of(at: datetime) -> datetime:
    return (at - timedelta(microseconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
