"""Use cases on instruments and stored bars: create, describe, query."""

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.errors import Conflict, NotFound, ValidationFailed
from quantdesk.core.timeparse import range_bounds
from quantdesk.core.types import MAX_EPOCH_US, MIN_EPOCH_US
from quantdesk.market import bar_store, repository
from quantdesk.market.bar_store import BarQuery
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval, parse_interval
from quantdesk.market.models import Instrument
from quantdesk.market.repository import LatestBar, SeriesSummary
from quantdesk.market.schemas import InstrumentCreate, InstrumentUpdate


@dataclass(frozen=True)
class InstrumentView:
    instrument: Instrument
    latest: LatestBar | None
    series: list[SeriesSummary] | None = None


@dataclass(frozen=True)
class BarPageResult:
    instrument: Instrument
    interval: Interval
    bars: BarArrays
    next_cursor: str | None


async def require_instrument(session: AsyncSession, symbol: str, lock: bool = False) -> Instrument:
    instrument = await repository.get_by_symbol(session, symbol, lock)
    if instrument is None:
        raise NotFound(
            f"no instrument '{symbol.upper()}'; create it with POST /api/v1/instruments "
            "or list them with GET /api/v1/instruments"
        )
    return instrument


async def create_instrument(session: AsyncSession, data: InstrumentCreate) -> Instrument:
    if await repository.get_by_symbol(session, data.symbol) is not None:
        raise Conflict(f"instrument '{data.symbol}' already exists; update it with PATCH instead")
    instrument = Instrument(**data.model_dump())
    repository.add(session, instrument)
    await session.flush()
    return instrument


async def ensure_instrument(session: AsyncSession, data: InstrumentCreate) -> Instrument:
    """The instrument with ``data.symbol``, created from ``data`` if it does not exist yet."""
    existing = await repository.get_by_symbol(session, data.symbol)
    return existing if existing is not None else await create_instrument(session, data)


async def update_instrument(session: AsyncSession, symbol: str, data: InstrumentUpdate) -> Instrument:
    instrument = await require_instrument(session, symbol)
    changes = data.model_dump(exclude_unset=True)
    new_symbol = changes.get("symbol")
    if new_symbol and new_symbol != instrument.symbol and await repository.get_by_symbol(session, new_symbol):
        raise Conflict(f"cannot rename to '{new_symbol}': that instrument already exists")
    for field, value in changes.items():
        if value is None and field in ("symbol", "currency"):
            raise ValidationFailed(f"{field} cannot be null")
        setattr(instrument, field, value)
    await session.flush()
    return instrument


async def delete_instrument(session: AsyncSession, symbol: str) -> None:
    """Delete an instrument with its bars (and its trade history); refused while any account holds it."""
    from quantdesk.trading.portfolio import holders  # trading builds on market data, not the reverse

    # Locked first: an order filling in it now may not have committed its position yet.
    instrument = await require_instrument(session, symbol, lock=True)
    held_by = await holders(session, instrument.id)
    if held_by:
        raise Conflict(
            f"{instrument.symbol} is held by {len(held_by)} account(s); it can be deleted once no account holds it"
        )
    await bar_store.delete_series(session, instrument.id, None)
    await repository.delete(session, instrument)
    await session.flush()


async def list_instruments(session: AsyncSession, asset_class: str | None = None) -> list[InstrumentView]:
    instruments = await repository.list_instruments(session, asset_class)
    latest = await repository.latest_bars(session, [i.id for i in instruments])
    return [InstrumentView(i, latest.get(i.id)) for i in instruments]


async def describe_instrument(session: AsyncSession, symbol: str) -> InstrumentView:
    instrument = await require_instrument(session, symbol)
    latest = await repository.latest_bars(session, [instrument.id])
    series = await repository.series_summaries(session, instrument.id)
    return InstrumentView(instrument, latest.get(instrument.id), series)


async def resolve_interval(session: AsyncSession, instrument: Instrument, interval: str | None) -> Interval:
    """The interval asked for, or the instrument's only stored one when none is given."""
    if interval:
        return parse_interval(interval)
    stored = await repository.series_summaries(session, instrument.id)
    if len(stored) == 1:
        return stored[0].interval
    if not stored:
        raise NotFound(f"instrument '{instrument.symbol}' has no bars yet; ingest some first")
    choices = ", ".join(s.interval.value for s in stored)
    raise ValidationFailed(f"'{instrument.symbol}' has bars at several intervals ({choices}); pass interval=")


def encode_cursor(ts_us: int) -> str:
    return base64.urlsafe_b64encode(str(ts_us).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    invalid = ValidationFailed("cursor is not valid; pass the next_cursor of a previous page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not MIN_EPOCH_US <= value <= MAX_EPOCH_US:
        raise invalid
    return value


async def query_bars(
    session: AsyncSession,
    symbol: str,
    *,
    interval: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    descending: bool = False,
) -> BarPageResult:
    """One page of bars in time order; ``next_cursor`` is set when more bars follow."""
    instrument = await require_instrument(session, symbol)
    chosen = await resolve_interval(session, instrument, interval)
    start_us, end_us = range_bounds(start, end)
    query = BarQuery(
        instrument_id=instrument.id,
        interval=chosen,
        start_us=start_us,
        end_us=end_us,
        after_us=decode_cursor(cursor) if cursor else None,
        limit=None if limit is None else limit + 1,
        descending=descending,
    )
    bars = await bar_store.read_bars(session, query)
    next_cursor = None
    if limit is not None and len(bars) > limit:
        bars = bars.take(slice(0, limit))  # type: ignore[arg-type]
        next_cursor = encode_cursor(int(bars.ts[-1]))
    return BarPageResult(instrument, chosen, bars, next_cursor)


async def bars_before(
    session: AsyncSession, instrument: Instrument, interval: Interval, before_us: int, count: int
) -> BarArrays:
    """The ``count`` bars opening just before ``before_us``, oldest first (history to warm indicators up)."""
    query = BarQuery(instrument.id, interval, end_us=before_us, limit=count, descending=True)
    return (await bar_store.read_bars(session, query)).sorted()
