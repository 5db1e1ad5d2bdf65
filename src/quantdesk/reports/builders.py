"""What each kind of report says: built from the same services the API uses, with a maker per chart."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import urlencode

import anyio
import numpy as np
import pandas as pd
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.service import Principal
from quantdesk.analytics import service as analytics_service
from quantdesk.backtest import service as backtest_service
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.forecast import service as forecast_service
from quantdesk.reports.model import Cell, Chart, Paragraph, Parameter, Report, Section, Table

ChartMaker = Callable[[], Awaitable[bytes]]
PRICE_OVERLAYS = "sma:20,sma:50,bollinger:20:2"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Built:
    report: Report
    charts: dict[str, ChartMaker]  # by Chart.key; only the PDF calls them


def _query(**params: str | None) -> str:
    present = {k: v for k, v in params.items() if v is not None}
    return f"?{urlencode(present)}" if present else ""


_duration = TypeAdapter(timedelta)


def _readable(name: str, value: object) -> Cell:
    """Numbers stay numbers; ISO durations become days and hours, ISO instants lose their T and seconds."""
    if isinstance(value, int | float) or value is None:
        return value
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, timedelta) or name.endswith("duration"):
        span = _duration.validate_python(value)
        hours = span.seconds // 3600
        return f"{span.days:,} days" + (f" {hours} h" if hours else "")
    text = str(value)
    return text[:16].replace("T", " ") if name in ("start", "end") else text


def metric_rows(values: dict[str, object]) -> list[list[Cell]]:
    return [[name.replace("_", " "), _readable(name, value)] for name, value in values.items()]


async def instrument_report(
    session: AsyncSession, symbol: str, settings: Settings, interval: str | None, start: str | None, end: str | None
) -> Built:
    request = analytics_service.SeriesRequest(symbol, interval, start, end)
    stats = await analytics_service.instrument_stats(session, request, settings)
    loaded, summary = stats.series, stats.summary
    instrument = loaded.instrument
    close = loaded.in_range["close"].to_numpy(dtype=np.float64)
    returns: np.ndarray = (close[1:] / close[:-1] - 1.0) * 100.0
    query = _query(interval=loaded.interval.value, start=start, end=end, indicators=PRICE_OVERLAYS)
    report = Report(
        kind="instrument",
        id=instrument.symbol,
        title=f"{instrument.symbol}: market report",
        subject=f"{instrument.name or instrument.symbol}, {loaded.interval.value} bars, summary statistics, "
        "price with indicators and the distribution of returns",
        generated_at=utcnow(),
        parameters=[
            Parameter(
                name="instrument",
                value=f"{instrument.symbol} ({instrument.asset_class or 'unclassified'}, {instrument.currency})",
            ),
            Parameter(name="interval", value=loaded.interval.value),
            Parameter(name="range", value=f"{summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC"),
            Parameter(name="bars", value=f"{summary.count:,}"),
            Parameter(name="periods per year", value=f"{loaded.periods_per_year:g}"),
        ],
        sections=[
            Section(
                heading="Summary statistics",
                blocks=[
                    Table(
                        title="close",
                        columns=["statistic", "value"],
                        rows=metric_rows({k: v for k, v in vars(summary).items() if k not in ("start", "end")}),
                    ),
                ],
            ),
            Section(
                heading="Price",
                blocks=[
                    Chart(
                        key="price",
                        title=f"close with {PRICE_OVERLAYS.replace(',', ', ')}",
                        href=f"/api/v1/instruments/{instrument.symbol}/chart.png{query}",
                    ),
                ],
            ),
            Section(
                heading="Returns distribution",
                blocks=[
                    Chart(key="returns", title="returns per bar"),
                    Table(title="returns per bar (%)", columns=["statistic", "value"], rows=_distribution(returns)),
                ],
            ),
        ],
    )

    async def price() -> bytes:
        return await analytics_service.chart_png(
            session, request, settings, width=1200, height=700, overlays=PRICE_OVERLAYS
        )

    async def histogram() -> bytes:
        from quantdesk.reports.charts import render_returns_histogram

        return await anyio.to_thread.run_sync(render_returns_histogram, returns, f"{instrument.symbol} returns")

    return Built(report, {"price": price, "returns": histogram})


def _distribution(returns: np.ndarray) -> list[list[Cell]]:
    if returns.size < 2:
        return [["bars with a return", int(returns.size)]]
    series = pd.Series(returns)
    rows: list[list[Cell]] = [
        ["bars with a return", int(returns.size)],
        ["mean", float(returns.mean())],
        ["standard deviation", float(returns.std(ddof=1))],
        ["skewness", float(cast(float, series.skew()))],  # sample-adjusted, as pandas computes them
        ["excess kurtosis", float(cast(float, series.kurt()))],
        ["share positive (%)", float((returns > 0).mean() * 100)],
        ["worst", float(returns.min())],
        ["best", float(returns.max())],
    ]
    for q in (1, 5, 25, 50, 75, 95, 99):
        rows.append([f"percentile {q}", float(np.percentile(returns, q))])
    return rows


async def backtest_report(
    session: AsyncSession, backtest_id: int, settings: Settings, caller: Principal | None = None
) -> Built:
    run = await backtest_service.get_backtest(session, backtest_id, caller)
    stamps, values = backtest_service.decode_curve(run.equity_curve)
    equity = pd.Series(values, index=pd.DatetimeIndex(stamps.astype("datetime64[us]")).tz_localize("UTC"))
    params = ", ".join(f"{k}={v:g}" for k, v in run.params.items()) or "none"
    costs = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in run.settings.items() if v is not None)
    trades = [
        [
            t["direction"],
            t["entry_time"],
            t["entry_price"],
            t["exit_time"],
            t["exit_price"],
            t["size"],
            t["pnl"],
            t["return_pct"],
            t["bars_held"],
            t["exit_reason"],
        ]
        for t in run.trades
    ]
    report = Report(
        kind="backtest",
        id=str(run.id),
        title=f"Backtest {run.id}: {run.symbol} {run.strategy}",
        subject=f"{run.strategy} ({params}) on {run.symbol} {run.interval} bars: metrics, equity against buy "
        "and hold, drawdown, monthly returns and every trade",
        generated_at=utcnow(),
        parameters=[
            Parameter(name="instrument", value=f"{run.symbol} {run.interval}"),
            Parameter(name="strategy", value=f"{run.strategy} ({params})"),
            Parameter(name="range", value=f"{equity.index[0]:%Y-%m-%d} to {equity.index[-1]:%Y-%m-%d}"),
            Parameter(name="settings", value=costs),
            Parameter(name="run at", value=f"{run.created_at:%Y-%m-%d %H:%M} UTC"),
        ],
        sections=[
            Section(
                heading="Metrics",
                blocks=[
                    Table(
                        title="every metric (formulas in docs/metrics.md)",
                        columns=["metric", "value"],
                        rows=metric_rows(run.metrics),
                    ),
                ],
            ),
            Section(
                heading="Equity",
                blocks=[
                    Chart(
                        key="equity",
                        title="equity against buy and hold, with trades; drawdown below",
                        href=f"/api/v1/backtests/{run.id}/equity.png",
                    ),
                ],
            ),
            Section(
                heading="Monthly returns",
                blocks=[
                    Table(
                        title="strategy return per month and year (%)",
                        columns=["year", *MONTHS, "year"],
                        rows=monthly_returns(equity),
                    ),
                ],
            ),
            Section(
                heading="Trades",
                blocks=[
                    Table(
                        title=f"{len(trades)} trades (an open one has no exit)",
                        columns=[
                            "side",
                            "entry time",
                            "entry",
                            "exit time",
                            "exit",
                            "size",
                            "P&L",
                            "return %",
                            "bars",
                            "exit reason",
                        ],
                        rows=[[_short_time(c) if i in (1, 3) else c for i, c in enumerate(row)] for row in trades],
                    ),
                ],
            ),
        ],
    )

    async def equity_chart() -> bytes:
        return await backtest_service.equity_png(session, run.id, settings, 1200, 700, caller)

    return Built(report, {"equity": equity_chart})


def _short_time(value: Cell) -> Cell:
    return value[:16].replace("T", " ") if isinstance(value, str) else value


def period_returns(equity: pd.Series, freq: str) -> dict[tuple[int, int], float]:
    """The equity's change over each calendar period in percent, by (year, month) (month 0 for years);
    the first period starts from the first bar's equity."""
    index = pd.DatetimeIndex(equity.index).tz_convert(None)
    naive = pd.Series(equity.to_numpy(), index=index)
    periods = index.to_period(freq)
    last = naive.groupby(periods).last()
    previous = np.concatenate([[naive.iloc[0]], last.to_numpy()[:-1]])
    changes = (last.to_numpy() / previous - 1.0) * 100.0
    keys = [(p.year, p.month if freq == "M" else 0) for p in last.index]
    return {key: round(float(change), 2) for key, change in zip(keys, changes, strict=True)}


def monthly_returns(equity: pd.Series) -> list[list[Cell]]:
    """Rows of (year, January..December, the whole year), in percent."""
    months, years = period_returns(equity, "M"), period_returns(equity, "Y")
    return [
        [str(year), *(months.get((year, month)) for month in range(1, 13)), years[(year, 0)]]
        for year in sorted(year for year, _ in years)
    ]


async def forecast_report(session: AsyncSession, forecast_id: int, settings: Settings) -> Built:
    forecast = await forecast_service.get_forecast(session, forecast_id)
    model = await forecast_service.get_model(session, forecast.model_id)
    actual, scores = await forecast_service.score(session, forecast)
    error_columns = ["", "count", "mae", "rmse", "mape %", "mase", "direction %"]
    keys = ("count", "mae", "rmse", "mape", "mase", "direction_accuracy")
    errors = [
        ["this forecast, so far", *(scores.as_dict()[k] for k in keys)],
        ["model hold-out (one step)", *(model.holdout.get(k) for k in keys)],
        ["model in sample (one step)", *(model.in_sample.get(k) for k in keys)],
    ]
    points = [
        [f"{p.ts:%Y-%m-%d %H:%M}", p.predicted, p.lower, p.upper, a]
        for p, a in zip(forecast.points, actual, strict=True)
    ]
    features = ", ".join(f"{k} {v}" for k, v in model.features.items())
    report = Report(
        kind="forecast",
        id=str(forecast.id),
        title=f"Forecast {forecast.id}: {forecast.symbol} {forecast.kind}",
        subject=f"{forecast.horizon} {forecast.interval} bars after {forecast.as_of:%Y-%m-%d %H:%M} UTC, predicted "
        "against what happened, the errors so far and the model",
        generated_at=utcnow(),
        parameters=[
            Parameter(name="instrument", value=f"{forecast.symbol} {forecast.interval}"),
            Parameter(name="model", value=f"{model.kind} (model {model.id})"),
            Parameter(name="origin", value=f"{forecast.as_of:%Y-%m-%d %H:%M} UTC, close {forecast.origin_close:,.4g}"),
            Parameter(name="horizon", value=f"{forecast.horizon} bars"),
        ],
        sections=[
            Section(
                heading="Actual against predicted",
                blocks=[
                    Chart(
                        key="forecast",
                        title="history, prediction with its 95% interval, actual closes",
                        href=f"/api/v1/forecasts/{forecast.id}/chart.png",
                    ),
                    Paragraph(text=f"{scores.count} of {forecast.horizon} predicted bars have an actual close so far."),
                ],
            ),
            Section(
                heading="Errors",
                blocks=[Table(title="errors (docs/forecasting.md)", columns=error_columns, rows=errors)],
            ),
            Section(
                heading="Model",
                blocks=[
                    Table(
                        title="how it was fitted",
                        columns=["", "value"],
                        rows=[
                            ["kind", model.kind],
                            [
                                "training window",
                                f"{model.train_start:%Y-%m-%d} to {model.as_of:%Y-%m-%d} ({model.bars} bars)",
                            ],
                            ["features", features],
                            ["hold-out log-error std", model.residual_std],
                            ["libraries", ", ".join(f"{k} {v}" for k, v in model.versions.items())],
                        ],
                    ),
                ],
            ),
            Section(
                heading="Points",
                blocks=[
                    Table(
                        title="every predicted bar",
                        columns=["timestamp", "predicted", "lower", "upper", "actual"],
                        rows=points,
                    )
                ],
            ),
        ],
    )

    async def chart() -> bytes:
        return await forecast_service.forecast_png(session, forecast.id, 1200, 600)

    return Built(report, {"forecast": chart})
