"""Analyses of stored bars: load through the market service, compute with the pure core."""

from dataclasses import dataclass, replace
from functools import partial

import anyio
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics.charts_spec import MAX_LINE_POINTS, OVERLAY_KINDS, ChartSpec
from quantdesk.analytics.enriched import EnrichOptions, check_windows, enrich, parse_indicators
from quantdesk.analytics.periods import DEFAULT_CALENDARS, MarketCalendar, periods_per_year
from quantdesk.analytics.resample import Frequency, coarsen, parse_frequency, resample
from quantdesk.analytics.stats import Summary, summarize
from quantdesk.core.config import Settings
from quantdesk.core.errors import NotFound, ValidationFailed
from quantdesk.core.timeparse import range_bounds
from quantdesk.core.types import to_epoch_us
from quantdesk.market import service as market_service
from quantdesk.market.bars import format_ts
from quantdesk.market.intervals import Interval
from quantdesk.market.models import Instrument

PERIODS_BY_FREQUENCY = {Frequency.week: 52.0, Frequency.month: 12.0, Frequency.quarter: 4.0, Frequency.year: 1.0}
FREQUENCY_SPAN = {Frequency.day: Interval.d1.micros, Frequency.week: Interval.w1.micros}
PERIOD_MICROS = {
    Frequency.day: Interval.d1.micros,
    Frequency.week: Interval.w1.micros,
    Frequency.month: 31 * Interval.d1.micros,
    Frequency.quarter: 92 * Interval.d1.micros,
    Frequency.year: 366 * Interval.d1.micros,
}
# Recursive averages (EMA, RSI, ATR, MACD) forget their starting point geometrically: four times their
# window of earlier bars puts an EMA-50 within 0.02% of the value computed on the full history.
WARMUP_FACTOR = 4


@dataclass(frozen=True)
class SeriesRequest:
    symbol: str
    interval: str | None = None
    start: str | None = None
    end: str | None = None
    frequency: str | None = None
    periods_per_year: float | None = None  # overrides the calendar


@dataclass(frozen=True)
class LoadedSeries:
    """The bars of the asked range, preceded by ``history_rows`` earlier bars for warming indicators up."""

    instrument: Instrument
    interval: Interval
    frequency: Frequency | None
    bars: pd.DataFrame
    periods_per_year: float
    history_rows: int = 0

    @property
    def in_range(self) -> pd.DataFrame:
        return self.bars.iloc[self.history_rows :]


@dataclass(frozen=True)
class StatsResult:
    series: LoadedSeries
    summary: Summary


@dataclass(frozen=True)
class EnrichedResult:
    series: LoadedSeries
    table: pd.DataFrame


def calendar_for(instrument: Instrument, settings: Settings) -> MarketCalendar:
    kind = instrument.asset_class or "stock"
    base = DEFAULT_CALENDARS[kind]
    return MarketCalendar(settings.trading_days.get(kind, base.trading_days), base.session_hours)


async def load_series(
    session: AsyncSession, request: SeriesRequest, settings: Settings, warmup: int = 0
) -> LoadedSeries:
    """The bars of the request's range (404 with the stored range when empty), resampled when asked,
    after up to ``warmup`` periods of earlier history when the range has a start."""
    page = await market_service.query_bars(
        session, request.symbol, interval=request.interval, start=request.start, end=request.end
    )
    if len(page.bars) == 0:
        await _raise_empty(session, page.instrument, page.interval, request)
    frequency = parse_frequency(request.frequency) if request.frequency else None
    if frequency is not None and FREQUENCY_SPAN.get(frequency, page.interval.micros) < page.interval.micros:
        raise ValidationFailed(f"cannot resample {page.interval.value} bars to the finer frequency '{frequency}'")
    history = await _history(session, page.instrument, page.interval, request, warmup, frequency)
    in_range = page.bars.to_frame()
    calendar = calendar_for(page.instrument, settings)
    ppy = periods_per_year(page.interval, calendar)
    if frequency is not None:
        in_range = resample(in_range, frequency)
        if len(history):
            # A period that straddles the start keeps only its bars from the start on.
            history = resample(history, frequency).loc[lambda f: f.index < in_range.index[0]]
        ppy = PERIODS_BY_FREQUENCY.get(frequency, calendar.trading_days)
    bars = pd.concat([history, in_range]) if len(history) else in_range
    return LoadedSeries(page.instrument, page.interval, frequency, bars, request.periods_per_year or ppy, len(history))


async def _history(
    session: AsyncSession,
    instrument: Instrument,
    interval: Interval,
    request: SeriesRequest,
    warmup: int,
    frequency: Frequency | None,
) -> pd.DataFrame:
    start_us = range_bounds(request.start, None)[0] if warmup and request.start else None
    if start_us is None:  # no start, or one before anything storable: nothing comes before it
        return pd.DataFrame()
    per_period = max(1, PERIOD_MICROS[frequency] // interval.micros) if frequency else 1
    before = await market_service.bars_before(session, instrument, interval, start_us, warmup * per_period)
    return before.to_frame()


async def _raise_empty(
    session: AsyncSession, instrument: Instrument, interval: Interval, request: SeriesRequest
) -> None:
    view = await market_service.describe_instrument(session, instrument.symbol)
    stored = next((s for s in view.series or [] if s.interval is interval), None)
    asked = f"between {request.start or 'the start'} and {request.end or 'the end'}"
    if stored is None:
        raise NotFound(f"'{instrument.symbol}' has no {interval.value} bars; ingest some first")
    raise NotFound(
        f"'{instrument.symbol}' has no {interval.value} bars {asked}; stored {interval.value} bars span "
        f"{format_ts(to_epoch_us(stored.first))} to {format_ts(to_epoch_us(stored.last))}"
    )


async def instrument_stats(session: AsyncSession, request: SeriesRequest, settings: Settings) -> StatsResult:
    loaded = await load_series(session, request, settings)
    # CPU work on up to a page of bars (100,000): in a worker thread, so the event loop keeps serving.
    summary = await anyio.to_thread.run_sync(summarize, loaded.in_range, loaded.periods_per_year)
    return StatsResult(loaded, summary)


async def enriched_table(
    session: AsyncSession,
    request: SeriesRequest,
    settings: Settings,
    *,
    window: int = 20,
    volatility_window: int = 20,
    normalize_base: float = 100.0,
    indicators: str | None = None,
) -> EnrichedResult:
    options_base = EnrichOptions(window, volatility_window, normalize_base, None, tuple(parse_indicators(indicators)))
    loaded = await load_series(session, request, settings, warmup=options_base.warmup() * WARMUP_FACTOR)
    rows = len(loaded.bars) - loaded.history_rows
    if rows > settings.max_bars_per_page:
        raise ValidationFailed(
            f"the range holds {rows:,} bars; the enriched table is limited to {settings.max_bars_per_page:,} rows "
            "(QUANTDESK_MAX_BARS_PER_PAGE): narrow start/end or resample with frequency="
        )
    options = replace(options_base, periods_per_year=loaded.periods_per_year)
    check_windows(len(loaded.bars), options)
    table = await anyio.to_thread.run_sync(partial(enrich, loaded.bars, options, first_row=loaded.history_rows))
    return EnrichedResult(loaded, table)


def _render(bars: pd.DataFrame, spec: ChartSpec) -> bytes:
    """In a worker thread, so the event loop keeps serving. Renders run side by side: matplotlib's object
    API keeps its state per figure, and its font cache is kept per thread (a slow chart never holds up
    a small one; a test checks it)."""
    from quantdesk.analytics.charts import render_chart  # matplotlib loads on the first chart only

    return render_chart(bars, spec)


async def chart_png(
    session: AsyncSession,
    request: SeriesRequest,
    settings: Settings,
    *,
    width: int = 1200,
    height: int = 700,
    overlays: str | None = None,
    lower_panel: str = "returns",
    volatility_window: int = 20,
) -> bytes:
    requested = tuple(parse_indicators(overlays))
    not_overlays = [r.name for r in requested if r.name not in OVERLAY_KINDS]
    if not_overlays:
        raise ValidationFailed(
            f"{', '.join(not_overlays)} cannot be drawn over prices; chart overlays are {', '.join(OVERLAY_KINDS)}"
        )
    # The volatility window matters only when its panel is drawn: a short range still has a returns panel.
    drawn_window = volatility_window if lower_panel == "volatility" else 1
    needs = EnrichOptions(window=1, volatility_window=drawn_window, indicators=requested)
    loaded = await load_series(session, request, settings, warmup=needs.warmup() * WARMUP_FACTOR)
    check_windows(len(loaded.bars), needs)
    period = loaded.frequency.value if loaded.frequency else loaded.interval.value
    first, last = loaded.in_range.index[0], loaded.in_range.index[-1]
    # Drawing costs time per point, and no chart shows more than a few thousand: a long fine range is
    # drawn from coarser bars, and the title says so.
    bars, first_row, coarser = coarsen(loaded.bars, loaded.history_rows, MAX_LINE_POINTS)
    if coarser is not None:
        period = f"{coarser} (from {period} bars)"
    spec = ChartSpec(
        title=f"{loaded.instrument.symbol}  {period}  {first:%Y-%m-%d} – {last:%Y-%m-%d}",
        width_px=width,
        height_px=height,
        overlays=requested,
        lower_panel=lower_panel,
        volatility_window=volatility_window,
        periods_per_year=loaded.periods_per_year,
        first_row=first_row,
    )
    return await anyio.to_thread.run_sync(_render, bars, spec)
