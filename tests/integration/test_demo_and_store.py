"""The demo data set, and the fast bulk paths of the bar store on both databases."""

from datetime import date, datetime

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.types import to_epoch_us
from quantdesk.market import bar_store, demo, service
from quantdesk.market.bar_store import BarQuery
from quantdesk.market.ingest import IngestReport
from quantdesk.market.intervals import Interval
from quantdesk.market.models import AssetClass
from quantdesk.market.schemas import InstrumentCreate
from tests.factories import make_bars


@pytest.mark.slow
async def test_demo_set_spans_asset_classes_ten_years_and_a_minute_year(session: AsyncSession):
    reports = await demo.load_demo(session, date(2025, 1, 1))
    await session.commit()
    views = await service.list_instruments(session)
    assert len(views) >= 5
    assert {v.instrument.asset_class for v in views} == {c.value for c in AssetClass}
    assert all("(synthetic)" in (v.instrument.name or "") for v in views)
    daily = [r for r in reports if r.interval is Interval.d1]
    assert all(r.first is not None and r.first <= "2015-01-06" for r in daily)
    minute = next(r for r in reports if r.interval is Interval.m1)
    assert minute.received == 525_600
    # the minute year and the daily bars of that year are the same prices
    btc = await service.require_instrument(session, "BTCUSD")
    days = await bar_store.read_bars(session, BarQuery(btc.id, Interval.d1, start_us=int(minute_start(minute))))
    minutes = await bar_store.read_bars(session, BarQuery(btc.id, Interval.m1))
    assert days.close[-1] == minutes.close[-1]
    assert days.high[0] == minutes.high[:1440].max()
    again = await demo.load_demo(session, date(2025, 1, 1), with_minutes=False)
    assert all(r.inserted == 0 and r.updated == 0 for r in again)


def minute_start(report: IngestReport) -> int:
    assert report.first is not None
    return to_epoch_us(datetime.fromisoformat(report.first))


async def test_bulk_upsert_and_range_read_round_trip(session: AsyncSession):
    instrument = await service.create_instrument(session, InstrumentCreate(symbol="RT"))
    bars = make_bars(5_000, Interval.m5)
    counts = await bar_store.upsert_bars(session, instrument.id, Interval.m5, bars)
    await session.commit()
    assert (counts.inserted, counts.updated, counts.unchanged) == (5_000, 0, 0)
    back = await bar_store.read_bars(session, BarQuery(instrument.id, Interval.m5))
    for original, stored in zip(bars.columns(), back.columns(), strict=True):
        np.testing.assert_array_equal(original, stored)
    window = await bar_store.read_bars(
        session, BarQuery(instrument.id, Interval.m5, start_us=int(bars.ts[10]), end_us=int(bars.ts[20]), limit=5)
    )
    np.testing.assert_array_equal(window.ts, bars.ts[10:15])
    newest = await bar_store.read_bars(
        session, BarQuery(instrument.id, Interval.m5, descending=True, after_us=int(bars.ts[3]))
    )
    np.testing.assert_array_equal(newest.ts, bars.ts[2::-1])


async def test_upsert_in_one_transaction_sees_its_own_staging_twice(session: AsyncSession):
    instrument = await service.create_instrument(session, InstrumentCreate(symbol="TWICE"))
    bars = make_bars(100)
    first = await bar_store.upsert_bars(session, instrument.id, Interval.d1, bars)
    changed = bars.take(np.arange(50))
    changed = type(changed)(changed.ts, changed.open, changed.high * 1.01, changed.low, changed.close, changed.volume)
    second = await bar_store.upsert_bars(session, instrument.id, Interval.d1, changed)
    await session.commit()
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (100, 0, 50, 0)
    assert await bar_store.upsert_bars(
        session, instrument.id, Interval.d1, bars.take(np.arange(0))
    ) == bar_store.UpsertCounts(0, 0, 0)


async def test_reads_see_nothing_of_an_empty_series(session: AsyncSession):
    instrument = await service.create_instrument(session, InstrumentCreate(symbol="NONE"))
    await session.commit()
    assert len(await bar_store.read_bars(session, BarQuery(instrument.id, Interval.d1))) == 0
