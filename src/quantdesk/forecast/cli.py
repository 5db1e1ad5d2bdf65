"""`quantdesk forecast train|predict|show|evaluate`."""

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.cli.runner import console, run_in_session, validated
from quantdesk.core.config import get_settings

if TYPE_CHECKING:
    from quantdesk.forecast.evaluation import Evaluation
    from quantdesk.forecast.models import Forecast
    from quantdesk.forecast.scoring import Errors

app = typer.Typer(help="Forecast closes with stored models and score them against what happened.", no_args_is_help=True)

Symbol = Annotated[str, typer.Argument(help="Instrument symbol")]
Interval = Annotated[str | None, typer.Option(help="Bar interval; the only stored one when omitted")]
AsOf = Annotated[str | None, typer.Option(help="Last bar used (ISO 8601, inclusive); the last stored bar when omitted")]
Kind = Annotated[str, typer.Option("--model", help="linear, ridge, gradient_boosting, naive or drift")]


def _number(value: object) -> str:
    return f"{value:,.4g}" if isinstance(value, float) else "-" if value is None else str(value)


def _errors_table(title: str, rows: Mapping[str, Mapping[str, object]]) -> Table:
    table = Table("", "count", "mae", "rmse", "mape %", "mase", "direction %", title=title)
    for name, errors in rows.items():
        keys = ("count", "mae", "rmse", "mape", "mase", "direction_accuracy")
        table.add_row(name, *(_number(errors[key]) for key in keys))
    return table


@app.command("train")
def train_command(symbol: Symbol, model: Kind = "linear", interval: Interval = None, as_of: AsOf = None) -> None:
    """Fit a model up to as_of and store it; prints its id and its errors."""
    from quantdesk.forecast import service
    from quantdesk.forecast.schemas import ModelCreate

    body = validated(ModelCreate, {"symbol": symbol, "model": model, "interval": interval, "as_of": as_of})

    async def work(session: AsyncSession) -> tuple[int, datetime, int, dict[str, Any], dict[str, Any]]:
        stored = await service.train_model(session, body, get_settings())
        return stored.id, stored.as_of, stored.bars, stored.in_sample, stored.holdout

    model_id, last, bars, in_sample, holdout = run_in_session(work, write=True)
    title = f"model {model_id}: {symbol.upper()} {model}, {bars} bars to {last:%Y-%m-%d %H:%M}"
    console.print(_errors_table(title + ", one-step errors", {"in sample": in_sample, "hold-out": holdout}))


@app.command("predict")
def predict_command(
    symbol: Annotated[str | None, typer.Argument(help="Instrument symbol (not needed with --model-id)")] = None,
    model: Kind = "linear",
    model_id: Annotated[int | None, typer.Option(help="Use this stored model")] = None,
    horizon: Annotated[int, typer.Option(help="Bars to predict")] = 30,
    interval: Interval = None,
    as_of: AsOf = None,
) -> None:
    """Predict the next bars and store the forecast; prints its points."""
    from quantdesk.forecast import service
    from quantdesk.forecast.schemas import ForecastCreate

    body = validated(
        ForecastCreate,
        {
            "symbol": symbol,
            "model": model,
            "model_id": model_id,
            "horizon": horizon,
            "interval": interval,
            "as_of": as_of,
        },
    )

    async def work(session: AsyncSession) -> int:
        forecast = await service.create_forecast(session, body, get_settings(), capped=False)
        return forecast.id

    show_command(run_in_session(work, write=True))


@app.command("show")
def show_command(forecast_id: Annotated[int, typer.Argument(help="Forecast id")]) -> None:
    """A stored forecast: predicted against actual per bar, and the scores so far."""
    from quantdesk.forecast import service

    async def work(session: AsyncSession) -> tuple["Forecast", list[float | None], "Errors"]:
        forecast = await service.get_forecast(session, forecast_id)
        actual, scores = await service.score(session, forecast)
        return forecast, actual, scores

    forecast, actual, scores = run_in_session(work)
    table = Table(
        "timestamp",
        "predicted",
        "lower",
        "upper",
        "actual",
        title=f"forecast {forecast.id}: {forecast.symbol} {forecast.kind} from {forecast.as_of:%Y-%m-%d %H:%M}",
    )
    for point, value in zip(forecast.points, actual, strict=True):
        table.add_row(
            f"{point.ts:%Y-%m-%d %H:%M}", *(_number(v) for v in (point.predicted, point.lower, point.upper, value))
        )
    console.print(table)
    console.print(_errors_table("scores over the bars that have arrived", {"forecast": scores.as_dict()}))


@app.command("evaluate")
def evaluate_command(
    symbol: Symbol,
    model: Annotated[list[str] | None, typer.Option("--model", help="Model(s) to evaluate; all when omitted")] = None,
    folds: Annotated[int, typer.Option(min=1, max=200, help="Forecast origins rolled through history")] = 10,
    horizon: Annotated[int, typer.Option(min=1, max=1000, help="Bars forecast from each origin")] = 30,
    interval: Interval = None,
) -> None:
    """Walk-forward: refit at each origin, forecast the next bars, compare every model with naive."""
    import anyio

    from quantdesk.analytics import service as analytics_service
    from quantdesk.forecast import evaluation, forecasters, service
    from quantdesk.forecast.features import FeatureSpec

    kinds = model or [k for k in forecasters.KINDS if k != "naive"]
    for kind in kinds:
        service.check_kind(kind)

    async def work(session: AsyncSession) -> "Evaluation":
        request = analytics_service.SeriesRequest(symbol, interval)
        loaded = await analytics_service.load_series(session, request, get_settings())
        close = loaded.bars["close"].to_numpy(dtype=float)
        return await anyio.to_thread.run_sync(evaluation.walk_forward, close, kinds, horizon, folds, FeatureSpec())

    result = run_in_session(work)
    naive = result.pooled["naive"].mae
    rows = {kind: errors.as_dict() for kind, errors in result.pooled.items()}
    console.print(_errors_table(f"{symbol.upper()}: {folds} folds x {horizon} bars, pooled", rows))
    for kind, errors in result.pooled.items():
        if kind != "naive" and errors.mae is not None and naive:
            verdict = "beats" if errors.mae < naive else "loses to"
            console.print(f"{kind} {verdict} naive: MAE {errors.mae:,.4g} against {naive:,.4g}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="forecast")
