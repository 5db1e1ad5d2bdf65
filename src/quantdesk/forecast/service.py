"""Train, store and load models; make, store and score forecasts against the bars that arrive later."""

import math
from datetime import datetime
from typing import TYPE_CHECKING

import anyio
import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from quantdesk.analytics import service as analytics_service
from quantdesk.core.config import Settings
from quantdesk.core.errors import Conflict, NotFound, ValidationFailed
from quantdesk.core.types import to_epoch_us
from quantdesk.forecast import forecasters, scoring, training
from quantdesk.forecast.features import FeatureSpec
from quantdesk.forecast.future import future_times
from quantdesk.forecast.models import Forecast, ForecastModel, ForecastPoint
from quantdesk.forecast.schemas import ForecastCreate, ModelCreate
from quantdesk.market import service as market_service
from quantdesk.market.intervals import Interval
from quantdesk.market.models import Bar, Instrument

if TYPE_CHECKING:
    from quantdesk.forecast.charts import ForecastPicture

EVERY_DAY = 365.0  # a calendar with this many trading days a year trades at weekends too


def check_kind(kind: str) -> None:
    if kind not in forecasters.KINDS:
        raise ValidationFailed(f"unknown model '{kind}'; valid ones: {', '.join(forecasters.KINDS)}")


async def train_model(session: AsyncSession, body: ModelCreate, settings: Settings) -> ForecastModel:
    check_kind(body.model)
    request = analytics_service.SeriesRequest(
        body.symbol, body.interval.value if body.interval else None, body.start, body.as_of
    )
    loaded = await analytics_service.load_series(session, request, settings)
    close = loaded.bars["close"].to_numpy(dtype=np.float64)
    spec = FeatureSpec()
    trained = await anyio.to_thread.run_sync(training.train, body.model, close, spec)
    index = pd.DatetimeIndex(loaded.bars.index)
    model = ForecastModel(
        instrument_id=loaded.instrument.id,
        symbol=loaded.instrument.symbol,
        interval=loaded.interval.value,
        kind=body.model,
        train_start=index[0].to_pydatetime(),
        as_of=index[-1].to_pydatetime(),
        bars=trained.bars,
        features=spec.as_dict(),
        versions=forecasters.library_versions(),
        state=trained.forecaster.state(),
        in_sample=trained.in_sample.as_dict(),
        holdout=trained.holdout.as_dict(),
        residual_std=_finite(trained.residual_std),
        naive_scale=_finite(trained.naive_scale),
    )
    session.add(model)
    await session.flush()
    return model


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def load_forecaster(model: ForecastModel) -> forecasters.Forecaster:
    """The fitted model, refused when it was saved under library versions this server no longer has."""
    current = forecasters.library_versions()
    changed = sorted(name for name, version in model.versions.items() if current.get(name) != version)
    if changed:
        saved = ", ".join(f"{name} {model.versions[name]}" for name in changed)
        now = ", ".join(f"{name} {current.get(name, 'missing')}" for name in changed)
        raise Conflict(
            f"model {model.id} was saved with {saved} and this server has {now}: retrain it "
            f"(POST /api/v1/forecasts/models with symbol {model.symbol} and model {model.kind})"
        )
    return forecasters.restore(model.kind, FeatureSpec.from_dict(model.features), model.state)


async def get_model(session: AsyncSession, model_id: int) -> ForecastModel:
    model = await session.get(ForecastModel, model_id)
    if model is None:
        raise NotFound(f"no forecast model {model_id}; train one with POST /api/v1/forecasts/models")
    return model


async def list_models(session: AsyncSession, symbol: str | None, limit: int) -> list[ForecastModel]:
    query = select(ForecastModel).order_by(ForecastModel.id.desc()).limit(limit)
    if symbol:
        query = query.where(ForecastModel.symbol == symbol.upper())
    return list(await session.scalars(query))


async def _model_for(session: AsyncSession, body: ForecastCreate, settings: Settings) -> ForecastModel:
    if body.model_id is None:
        if body.symbol is None:
            raise ValidationFailed("give a symbol (a model is fitted up to as_of) or the model_id of a stored model")
        check_kind(body.model)
        return await train_model(
            session,
            ModelCreate(symbol=body.symbol, interval=body.interval, model=body.model, as_of=body.as_of),
            settings,
        )
    model = await get_model(session, body.model_id)
    if body.symbol is not None and body.symbol.upper() != model.symbol:
        raise ValidationFailed(f"model {model.id} was fitted on {model.symbol}, not {body.symbol.upper()}")
    return model


# What one step of a forecast costs, relative to a linear model's: gradient boosting predicts each step
# through hundreds of trees (about 0.1 s a step on the demo's daily bars).
STEP_WEIGHTS = {"gradient_boosting": 10}


def forecast_cost(kind: str, horizon: int) -> int:
    return horizon * STEP_WEIGHTS.get(kind, 1)


def _check_cost(kind: str, horizon: int, settings: Settings) -> None:
    cost = forecast_cost(kind, horizon)
    if cost > settings.max_forecast_cost:
        most = settings.max_forecast_cost // STEP_WEIGHTS.get(kind, 1)
        raise ValidationFailed(
            f"a {kind} forecast of {horizon} bars costs {cost:,} (horizon x {STEP_WEIGHTS.get(kind, 1)}); this "
            f"server makes forecasts of up to {settings.max_forecast_cost:,} (QUANTDESK_MAX_FORECAST_COST): "
            f"ask for at most {most} bars, or use a lighter model"
        )


async def create_forecast(
    session: AsyncSession, body: ForecastCreate, settings: Settings, capped: bool = True
) -> Forecast:
    """Predict the ``horizon`` bars after ``as_of`` with a stored model (or one fitted for the purpose).
    ``capped``: refuse forecasts above the server's cost cap (the command line's operator is not)."""
    if capped and body.model_id is None:
        _check_cost(body.model, body.horizon, settings)  # before fitting a model for it
    model = await _model_for(session, body, settings)
    if capped:
        _check_cost(model.kind, body.horizon, settings)
    forecaster = load_forecaster(model)
    request = analytics_service.SeriesRequest(model.symbol, model.interval, None, body.as_of)
    loaded = await analytics_service.load_series(session, request, settings)
    origin = pd.DatetimeIndex(loaded.bars.index)[-1].to_pydatetime()
    if origin < model.as_of:
        raise ValidationFailed(
            f"the origin {origin.isoformat()} is before the end of model {model.id}'s training window "
            f"({model.as_of.isoformat()}): it would have seen the future; train a model up to the origin"
        )
    close = loaded.bars["close"].to_numpy(dtype=np.float64)
    predicted = await anyio.to_thread.run_sync(forecaster.predict, close, body.horizon)
    lower, upper = training.interval(predicted, model.residual_std if model.residual_std is not None else math.nan)
    calendar = analytics_service.calendar_for(loaded.instrument, settings)
    times = future_times(origin, Interval(model.interval), body.horizon, calendar.trading_days >= EVERY_DAY)
    forecast = Forecast(
        model_id=model.id,
        instrument_id=model.instrument_id,
        symbol=model.symbol,
        interval=model.interval,
        kind=model.kind,
        as_of=origin,
        origin_close=float(close[-1]),
        horizon=body.horizon,
        points=[
            ForecastPoint(step=i + 1, ts=ts, predicted=float(p), lower=float(lo), upper=float(hi))
            for i, (ts, p, lo, hi) in enumerate(zip(times, predicted, lower, upper, strict=True))
        ],
    )
    session.add(forecast)
    await session.flush()
    return forecast


async def get_forecast(session: AsyncSession, forecast_id: int) -> Forecast:
    forecast = await session.get(Forecast, forecast_id, options=[selectinload(Forecast.points)])
    if forecast is None:
        raise NotFound(f"no forecast {forecast_id}; make one with POST /api/v1/forecasts")
    return forecast


async def list_forecasts(session: AsyncSession, symbol: str | None, limit: int) -> list[Forecast]:
    query = select(Forecast).order_by(Forecast.id.desc()).limit(limit)
    if symbol:
        query = query.where(Forecast.symbol == symbol.upper())
    return list(await session.scalars(query))


async def actuals(session: AsyncSession, forecast: Forecast) -> dict[datetime, float]:
    """Closes of the stored bars at the predicted timestamps, as many as have arrived."""
    stamps = [point.ts for point in forecast.points]
    rows = await session.execute(
        select(Bar.ts, Bar.close).where(
            Bar.instrument_id == forecast.instrument_id,
            Bar.interval == forecast.interval,
            Bar.ts >= stamps[0],
            Bar.ts <= stamps[-1],
        )
    )
    return {ts: close for ts, close in rows}  # noqa: C416  (Row unpacks; dict(rows) is not typed)


async def score(session: AsyncSession, forecast: Forecast) -> tuple[list[float | None], scoring.Errors]:
    """Each point's actual close (None until its bar arrives) and the errors over the points that have one."""
    found = await actuals(session, forecast)
    matched = [found.get(point.ts) for point in forecast.points]
    pairs = zip(forecast.points, matched, strict=True)
    have = [(point.predicted, actual) for point, actual in pairs if actual is not None]
    model = await session.get(ForecastModel, forecast.model_id)
    scale = model.naive_scale if model is not None and model.naive_scale else math.nan
    predicted = np.array([p for p, _ in have], dtype=np.float64)
    actual = np.array([a for _, a in have], dtype=np.float64)
    return matched, scoring.errors(predicted, actual, forecast.origin_close, scale)


async def picture(session: AsyncSession, forecast: Forecast) -> "ForecastPicture":
    """What the chart draws: about three horizons of history (at least 90 bars), the prediction, and the
    actual closes after the origin up to the last predicted bar."""
    from quantdesk.forecast.charts import ForecastPicture

    instrument = await session.get(Instrument, forecast.instrument_id)
    if instrument is None:
        raise NotFound(f"the instrument of forecast {forecast.id} is gone")
    interval = Interval(forecast.interval)
    origin_us = to_epoch_us(forecast.as_of)
    count = max(90, 3 * forecast.horizon)
    before = (await market_service.bars_before(session, instrument, interval, origin_us + 1, count)).to_frame()
    after = await session.execute(
        select(Bar.ts, Bar.close)
        .where(
            Bar.instrument_id == forecast.instrument_id,
            Bar.interval == forecast.interval,
            Bar.ts > forecast.as_of,
            Bar.ts <= forecast.points[-1].ts,
        )
        .order_by(Bar.ts)
    )
    arrived = after.all()
    actual = pd.Series(
        [close for _, close in arrived], index=pd.DatetimeIndex([ts for ts, _ in arrived], tz="UTC"), dtype=float
    )
    predicted = pd.DataFrame(
        {
            "predicted": [p.predicted for p in forecast.points],
            "lower": [p.lower for p in forecast.points],
            "upper": [p.upper for p in forecast.points],
        },
        index=pd.DatetimeIndex([p.ts for p in forecast.points]),
    )
    title = f"forecast {forecast.id}: {forecast.symbol} {forecast.interval} {forecast.kind}, {forecast.horizon} bars"
    return ForecastPicture(before["close"], predicted, actual, title)


async def forecast_png(session: AsyncSession, forecast_id: int, width: int, height: int) -> bytes:
    from quantdesk.forecast.charts import render_forecast  # matplotlib on demand

    shown = await picture(session, await get_forecast(session, forecast_id))
    return await anyio.to_thread.run_sync(render_forecast, shown, width, height)
