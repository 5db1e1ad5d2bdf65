"""Fetch bars from a provider and store only what is missing."""

import math
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.types import to_epoch_us
from quantdesk.market import repository
from quantdesk.market.bars import BarArrays
from quantdesk.market.ingest import IngestReport, store_bars
from quantdesk.market.intervals import Interval
from quantdesk.market.providers import alphavantage, coingecko
from quantdesk.market.providers.base import ProviderBars, StoredRange
from quantdesk.market.providers.http import RetryPolicy
from quantdesk.market.providers.schemas import AlphaVantageFetch, CoinGeckoFetch, ProviderInfo
from quantdesk.market.service import ensure_instrument

DEFAULT_DAYS = {"1d": 365, "4h": 30, "1h": 2}


def list_providers(settings: Settings) -> list[ProviderInfo]:
    return [
        ProviderInfo(
            name=alphavantage.NAME,
            label=alphavantage.LABEL,
            configured=settings.alphavantage_api_key is not None,
            intervals=["1d"],
        ),
        ProviderInfo(
            name=coingecko.NAME,
            label=coingecko.LABEL,
            configured=settings.coingecko_api_key is not None,
            intervals=["1d", "4h", "1h"],
        ),
    ]


async def stored_range(session: AsyncSession, symbol: str, interval: Interval) -> StoredRange:
    instrument = await repository.get_by_symbol(session, symbol)
    if instrument is None:
        return StoredRange(last=None)
    summaries = await repository.series_summaries(session, instrument.id)
    last = next((s.last for s in summaries if s.interval is interval), None)
    return StoredRange(last=last)


def _day_start(day: date) -> int:
    return to_epoch_us(datetime.combine(day, time.min, tzinfo=UTC))


def keep_missing(bars: BarArrays, stored: StoredRange, start: date | None = None, end: date | None = None) -> BarArrays:
    """Bars from the last stored one on (it may have changed since), within [start, end]."""
    keep = np.ones(len(bars), dtype=bool)
    if stored.last is not None:
        keep &= bars.ts >= to_epoch_us(stored.last)
    if start is not None:
        keep &= bars.ts >= _day_start(start)
    if end is not None:
        keep &= bars.ts < _day_start(end + timedelta(days=1))
    return bars.take(np.flatnonzero(keep))


async def _store(session: AsyncSession, fetched: ProviderBars, bars: BarArrays, provider: str) -> IngestReport:
    instrument = await ensure_instrument(session, fetched.instrument)
    notes = [*fetched.notes, f"{len(bars)} of {len(fetched.bars)} fetched bars were new or may have changed"]
    if len(bars) == 0:
        report = IngestReport(instrument.symbol, fetched.interval, "given", 0, 0, 0, 0, None, None, provider, notes)
        return report
    report = await store_bars(session, instrument, bars.sorted(), fetched.interval)
    return replace(report, format=provider, notes=notes)


async def fetch_alphavantage(session: AsyncSession, request: AlphaVantageFetch, settings: Settings) -> IngestReport:
    symbol = request.symbol.upper()
    stored = await stored_range(session, symbol, Interval.d1)
    key = settings.alphavantage_api_key.get_secret_value() if settings.alphavantage_api_key else None
    start = datetime.combine(request.start, time.min, tzinfo=UTC) if request.start else None
    fetched = await alphavantage.fetch_daily(
        symbol,
        api_key=key,
        base_url=settings.alphavantage_base_url,
        policy=RetryPolicy.from_settings(settings),
        stored=stored,
        start=start,
        output_size=request.outputsize,
    )
    bars = keep_missing(fetched.bars, stored if start is None else StoredRange(None), request.start, request.end)
    return await _store(session, fetched, bars, alphavantage.NAME)


async def fetch_coingecko(session: AsyncSession, request: CoinGeckoFetch, settings: Settings) -> IngestReport:
    symbol = request.symbol.upper()
    ref = coingecko.resolve_coin(symbol, request.coin_id, request.vs_currency)
    stored = await stored_range(session, symbol, Interval(request.interval))
    if request.days is not None:
        needed = request.days
    elif stored.last is not None:
        needed = max(1, math.ceil((utcnow() - stored.last) / timedelta(days=1)))
    else:
        needed = DEFAULT_DAYS[request.interval]
    days = coingecko.days_for(request.interval, needed, settings.coingecko_pro)
    fetched = await coingecko.fetch_bars(
        ref, request.interval, days, settings, RetryPolicy.from_settings(settings), symbol
    )
    bars = keep_missing(fetched.bars, stored if request.days is None else StoredRange(None))
    return await _store(session, fetched, bars, coingecko.NAME)
