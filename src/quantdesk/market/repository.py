"""Queries on instruments and on per-series summaries of their bars."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, func, literal, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.db import dialect_name
from quantdesk.market.intervals import Interval
from quantdesk.market.models import Bar, Instrument


@dataclass(frozen=True)
class SeriesSummary:
    interval: Interval
    first: datetime
    last: datetime
    count: int


@dataclass(frozen=True)
class LatestBar:
    interval: Interval
    ts: datetime
    close: float

    @property
    def closes_at(self) -> datetime:
        return self.ts + timedelta(microseconds=self.interval.micros)


async def get_by_symbol(session: AsyncSession, symbol: str, lock: bool = False) -> Instrument | None:
    """The instrument; ``lock`` takes its row lock on PostgreSQL until the transaction ends, which waits
    for every transaction that has stored a row referring to it (SQLite's writers are serialised)."""
    query = select(Instrument).where(Instrument.symbol == symbol.upper())
    if lock and dialect_name(session) == "postgresql":
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def list_instruments(session: AsyncSession, asset_class: str | None = None) -> Sequence[Instrument]:
    statement = select(Instrument).order_by(Instrument.symbol)
    if asset_class is not None:
        statement = statement.where(Instrument.asset_class == asset_class)
    return (await session.execute(statement)).scalars().all()


def add(session: AsyncSession, instrument: Instrument) -> None:
    session.add(instrument)


async def delete(session: AsyncSession, instrument: Instrument) -> None:
    await session.delete(instrument)


async def series_summaries(session: AsyncSession, instrument_id: int) -> list[SeriesSummary]:
    statement = (
        select(Bar.interval, func.min(Bar.ts), func.max(Bar.ts), func.count())
        .where(Bar.instrument_id == instrument_id)
        .group_by(Bar.interval)
    )
    rows = (await session.execute(statement)).all()
    summaries = [SeriesSummary(Interval(r[0]), r[1], r[2], int(r[3])) for r in rows]
    return sorted(summaries, key=lambda s: s.interval.micros)


async def latest_bars(
    session: AsyncSession, instrument_ids: Sequence[int], before: datetime | None = None
) -> dict[int, LatestBar]:
    """The most recently closing bar of each instrument, over all its intervals; with ``before``, of
    the bars opened before then (the close before a day began).

    One statement; each (instrument, interval) pair is a primary-key seek, so the cost does not
    grow with the number of stored bars. (Ordering an instrument's bars by time across its intervals
    cannot use the key: it sorts them all, 0.1 s for a million minute bars.)
    """
    if not instrument_ids:
        return {}
    # A UNION of literals rather than VALUES: SQLite cannot name the columns of a VALUES list.
    intervals = union_all(*(select(literal(i.value, String).label("interval")) for i in Interval)).subquery("intervals")

    def newest(field: Any) -> Any:
        query = select(field).where(Bar.instrument_id == Instrument.id, Bar.interval == intervals.c.interval)
        if before is not None:
            query = query.where(Bar.ts < before)
        return query.order_by(Bar.ts.desc()).limit(1).scalar_subquery()

    statement = (
        select(Instrument.id, intervals.c.interval, newest(Bar.ts), newest(Bar.close))
        .select_from(Instrument)
        .join(intervals, true())
        .where(Instrument.id.in_(instrument_ids))
    )
    latest: dict[int, LatestBar] = {}
    for instrument_id, interval, ts, close in (await session.execute(statement)).all():
        if ts is None:
            continue
        candidate = LatestBar(Interval(interval), ts, float(close))
        current = latest.get(instrument_id)
        if current is None or candidate.closes_at > current.closes_at:
            latest[instrument_id] = candidate
    return latest
