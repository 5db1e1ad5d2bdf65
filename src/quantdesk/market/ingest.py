"""Use cases that store bars: JSON bodies, CSV files and provider fetches all end in ``store_bars``."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC

import anyio
import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import to_epoch_us
from quantdesk.market import bar_store
from quantdesk.market.bars import BarArrays, find_problems, format_ts
from quantdesk.market.csv_formats import adjust_for_interval, parse_csv
from quantdesk.market.intervals import Interval, infer_interval
from quantdesk.market.models import Instrument
from quantdesk.market.schemas import BarIn, InstrumentCreate
from quantdesk.market.service import ensure_instrument, require_instrument


@dataclass(frozen=True)
class IngestReport:
    symbol: str
    interval: Interval
    interval_source: str
    received: int
    inserted: int
    updated: int
    unchanged: int
    first: str | None
    last: str | None
    format: str | None = None
    notes: list[str] = field(default_factory=list)


async def _target(session: AsyncSession, symbol: str, create: bool) -> Instrument:
    if create:
        return await ensure_instrument(session, InstrumentCreate(symbol=symbol))
    return await require_instrument(session, symbol)


async def store_bars(
    session: AsyncSession,
    instrument: Instrument,
    bars: BarArrays,
    interval: Interval | None,
    *,
    rows: NDArray[np.int64] | None = None,
    header_lines: int | None = None,
) -> IngestReport:
    """Validate every bar, then upsert all of them in the caller's transaction, or none."""
    if len(bars) == 0:
        raise ValidationFailed("no bars to store; send at least one bar")
    chosen = interval if interval is not None else infer_interval(bars.ts)
    find_problems(bars, chosen, rows).raise_if_any(header_lines)
    counts = await bar_store.upsert_bars(session, instrument.id, chosen, bars)
    from quantdesk.trading.prices import note_bar  # a newer close is the last price paper orders fill at

    newest = int(np.argmax(bars.ts))
    await note_bar(session, instrument, int(bars.ts[newest]) + chosen.micros, float(bars.close[newest]))
    return IngestReport(
        symbol=instrument.symbol,
        interval=chosen,
        interval_source="given" if interval is not None else "inferred",
        received=len(bars),
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        first=format_ts(int(bars.ts.min())),
        last=format_ts(int(bars.ts.max())),
    )


def bars_from_models(items: Sequence[BarIn]) -> BarArrays:
    """Columns from validated JSON bars; naive timestamps mean UTC but may not be mixed with zoned ones."""
    zoned = [item.timestamp.tzinfo is not None for item in items]
    if any(zoned) and not all(zoned):
        rows = [i + 1 for i, z in enumerate(zoned) if z != zoned[0]][:10]
        raise ValidationFailed(
            "timestamps mix time zones: some carry a UTC offset and some do not; give every "
            f"timestamp an offset (or none, meaning UTC). Rows that differ from the first: {rows}"
        )
    stamps = [
        to_epoch_us(item.timestamp if item.timestamp.tzinfo else item.timestamp.replace(tzinfo=UTC)) for item in items
    ]
    return BarArrays.from_columns(
        ts=stamps,
        open=[b.open for b in items],
        high=[b.high for b in items],
        low=[b.low for b in items],
        close=[b.close for b in items],
        volume=[b.volume for b in items],
    )


async def ingest_json(
    session: AsyncSession, symbol: str, items: Sequence[BarIn], interval: Interval | None, create: bool = False
) -> IngestReport:
    instrument = await _target(session, symbol, create)
    return await store_bars(session, instrument, bars_from_models(items), interval)


async def ingest_csv(
    session: AsyncSession, symbol: str, data: bytes, interval: Interval | None, create: bool = False
) -> IngestReport:
    """Detect the CSV layout, parse, validate and store; the report names the layout and interval."""
    instrument = await _target(session, symbol, create)
    # Parsing a large file takes CPU for a while: in a worker thread, so the server keeps answering.
    parsed = await anyio.to_thread.run_sync(parse_csv, data)
    chosen = interval if interval is not None else infer_interval(parsed.bars.ts)
    parsed = adjust_for_interval(parsed, chosen)
    report = await store_bars(
        session, instrument, parsed.bars, chosen, rows=parsed.rows, header_lines=parsed.header_lines
    )
    source = "given" if interval is not None else "inferred"
    return replace(report, interval_source=source, format=parsed.format, notes=parsed.notes)
