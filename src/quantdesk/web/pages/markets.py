"""Markets: the instruments with their last price and day change, and an instrument's chart and statistics."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from quantdesk.analytics import service as analytics
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import QuantdeskError
from quantdesk.market import service as market
from quantdesk.market.intervals import Interval
from quantdesk.market.models import Instrument
from quantdesk.market.service import InstrumentView
from quantdesk.trading import prices
from quantdesk.web import charts
from quantdesk.web.session import Viewer
from quantdesk.web.templating import moment, render

router = APIRouter()
RANGES: dict[str, timedelta | None] = {
    "5d": timedelta(days=5),
    "1m": timedelta(days=31),
    "3m": timedelta(days=92),
    "6m": timedelta(days=183),
    "1y": timedelta(days=366),
    "5y": timedelta(days=5 * 366),
    "all": None,
}
INDICATOR_CHOICES = ("sma:20", "sma:50", "sma:200", "ema:20", "bollinger:20:2", "rsi:14", "macd:12:26:9", "atr:14")
DEFAULT_INDICATORS = ("sma:20", "sma:50")


@dataclass(frozen=True)
class MarketRow:
    instrument: Instrument
    quote: prices.Quote | None
    as_of: str


def as_of(view: InstrumentView, quote: prices.Quote | None) -> str:
    """When the last price is from: a bar's close is dated by its bar (a daily bar of 31 December closes at
    midnight on 1 January, yet is 31 December's); a tick or an admin's price by its time."""
    if quote is None:
        return "no price yet"
    latest = view.latest
    if latest is not None and quote.at == latest.closes_at:
        return f"{moment(latest.ts)} ({latest.interval.value} bar)"
    return moment(quote.at)


@router.get("/dashboard", response_class=HTMLResponse)
async def markets(request: Request, session: SessionDep, _viewer: Viewer) -> HTMLResponse:
    views = await market.list_instruments(session)
    quotes = await prices.quotes(session, [view.instrument for view in views])
    rows = [
        MarketRow(view.instrument, quotes.get(view.instrument.id), as_of(view, quotes.get(view.instrument.id)))
        for view in views
    ]
    return render(request, "markets.html", {"rows": rows, "page": "markets"})


def _interval(series: list[Interval], asked: str | None) -> Interval | None:
    if asked:
        return Interval(asked) if asked in {i.value for i in series} else None
    return Interval.d1 if Interval.d1 in series else (series[0] if series else None)


@router.get("/dashboard/markets/{symbol}", response_class=HTMLResponse)
async def instrument(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _viewer: Viewer,
    symbol: str,
    interval: str | None = None,
    period: Annotated[str | None, Query(alias="range")] = None,
    ind: Annotated[list[str] | None, Query()] = None,
    extra: str = "",
) -> HTMLResponse:
    view = await market.describe_instrument(session, symbol)
    stored = [s.interval for s in view.series or []]
    chosen = _interval(stored, interval)
    indicators = [*(DEFAULT_INDICATORS if ind is None else ind), *[p for p in extra.split(",") if p.strip()]]
    intraday = chosen is not None and chosen.micros < Interval.d1.micros
    span = period if period in RANGES else ("5d" if intraday else "all")
    quote = await prices.quote(session, view.instrument)
    context = {
        "page": "markets",
        "view": view,
        "quote": quote,
        "as_of": as_of(view, quote),
        "intervals": stored,
        "interval": chosen,
        "ranges": list(RANGES),
        "span": span,
        "choices": INDICATOR_CHOICES,
        "indicators": indicators,
        "extra": extra,
        "figure": None,
        "summary": None,
        "error": None,
    }
    if chosen is None:
        context["error"] = (
            f"{view.instrument.symbol} has no {interval} bars"
            if interval
            else f"{view.instrument.symbol} has no bars yet"
        )
        return render(request, "instrument.html", context, 404 if interval else 200)
    series = next(s for s in view.series or [] if s.interval is chosen)
    lookback = RANGES[span]
    start = None if lookback is None else (series.last - lookback).isoformat()
    request_ = analytics.SeriesRequest(view.instrument.symbol, chosen.value, start, None)
    try:
        enriched = await analytics.enriched_table(session, request_, settings, indicators=",".join(indicators))
        stats = await analytics.instrument_stats(session, request_, settings)
    except QuantdeskError as problem:
        context["error"] = problem.detail
        return render(request, "instrument.html", context, 422)
    columns = [c for c in enriched.table.columns if c.startswith(tuple(i.split(":")[0] for i in indicators))]
    figure = charts.candles(enriched.table, view.instrument.symbol, columns, intraday, span)
    context.update(figure=charts.as_json(figure), summary=stats.summary, bars=len(enriched.table))
    return render(request, "instrument.html", context)
