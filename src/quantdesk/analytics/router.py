"""HTTP endpoints of the analytics domain: /api/v1/instruments/{symbol}/stats, /enriched and /chart.png."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from quantdesk.analytics import service
from quantdesk.analytics.enriched import MAX_WINDOW, VALID_INDICATORS
from quantdesk.analytics.rendering import enriched_response
from quantdesk.analytics.resample import Frequency
from quantdesk.analytics.schemas import EnrichedTable, StatsRead
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.market.intervals import Interval

router = APIRouter(prefix="/api/v1/instruments", tags=["analytics"])

WindowQuery = Annotated[int, Query(ge=1, le=MAX_WINDOW)]


async def series_request(
    symbol: str,
    interval: Interval | None = None,
    start: Annotated[str | None, Query(description="Inclusive ISO 8601 date or datetime (UTC if naive).")] = None,
    end: Annotated[str | None, Query(description="Inclusive; a date covers the whole day.")] = None,
    frequency: Annotated[
        Frequency | None, Query(description="Resample to calendar periods (labelled by their start).")
    ] = None,
    periods_per_year: Annotated[
        float | None,
        Query(gt=0, le=1_000_000, description="Bars per year for annualising; default from interval and asset class."),
    ] = None,
) -> service.SeriesRequest:
    """The series every analytics endpoint reads: symbol, interval, range, resampling, annualising."""
    return service.SeriesRequest(
        symbol,
        interval.value if interval else None,
        start,
        end,
        frequency.value if frequency else None,
        periods_per_year,
    )


SeriesDep = Annotated[service.SeriesRequest, Depends(series_request)]


@router.get("/{symbol}/stats", response_model=StatsRead)
async def get_stats(session: SessionDep, settings: SettingsDep, series: SeriesDep) -> StatsRead:
    """Summary statistics of the close over the range, with annualised return, volatility and drawdown."""
    result = await service.instrument_stats(session, series, settings)
    loaded = result.series
    return StatsRead(
        symbol=loaded.instrument.symbol,
        interval=loaded.interval,
        frequency=loaded.frequency,
        periods_per_year=loaded.periods_per_year,
        **result.summary.__dict__,
    )


@router.get(
    "/{symbol}/enriched",
    response_model=EnrichedTable,
    responses={200: {"content": {"text/csv": {}}, "description": "columns + rows, records, or CSV"}},
)
async def get_enriched(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    series: SeriesDep,
    window: WindowQuery = 20,
    volatility_window: WindowQuery = 20,
    normalize_base: Annotated[float, Query(gt=0, le=1e12)] = 100.0,
    indicators: Annotated[
        str | None, Query(description=f"Comma-separated, e.g. sma:20,rsi:14. Valid: {VALID_INDICATORS}")
    ] = None,
    orient: Annotated[Literal["table", "records"], Query()] = "table",
    format: Annotated[Literal["json", "csv"] | None, Query(description="Overrides the Accept header.")] = None,
) -> Response:
    """The bars with returns, rolling statistics, volatility, normalisation, drawdown and indicators."""
    result = await service.enriched_table(
        session,
        series,
        settings,
        window=window,
        volatility_window=volatility_window,
        normalize_base=normalize_base,
        indicators=indicators,
    )
    as_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    return enriched_response(result, orient, as_csv)


@router.get("/{symbol}/chart.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_chart(
    session: SessionDep,
    settings: SettingsDep,
    series: SeriesDep,
    indicators: Annotated[str | None, Query(description="Overlays: sma:N, ema:N, bollinger:N:k")] = None,
    lower: Annotated[Literal["returns", "volatility"], Query(description="Bottom panel")] = "returns",
    volatility_window: WindowQuery = 20,
    width: Annotated[int, Query(ge=300, le=4000, description="Pixels")] = 1200,
    height: Annotated[int, Query(ge=200, le=3000, description="Pixels")] = 700,
) -> Response:
    """Candles (a close line past 300 bars) with overlays, a volume panel and a returns or volatility panel."""
    png = await service.chart_png(
        session,
        series,
        settings,
        width=width,
        height=height,
        overlays=indicators,
        lower_panel=lower,
        volatility_window=volatility_window,
    )
    return Response(png, media_type="image/png")
