"""HTTP endpoints of forecasting under /api/v1/forecasts."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response, status

from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.types import RowId, to_epoch_us
from quantdesk.forecast import service
from quantdesk.forecast.models import Forecast
from quantdesk.forecast.schemas import ForecastCreate, ForecastRead, ForecastSummary, ModelCreate, ModelRead
from quantdesk.market.rendering import iso_timestamps

router = APIRouter(prefix="/api/v1/forecasts", tags=["forecasts"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/models", response_model=ModelRead, status_code=status.HTTP_201_CREATED)
async def train_model(session: SessionDep, settings: SettingsDep, body: ModelCreate) -> ModelRead:
    """Fit a model on an instrument's bars up to as_of and store it with its hold-out errors."""
    return ModelRead.model_validate(await service.train_model(session, body, settings))


@router.get("/models", response_model=list[ModelRead])
async def list_models(session: SessionDep, symbol: str | None = None, limit: Limit = 100) -> list[ModelRead]:
    return [ModelRead.model_validate(m) for m in await service.list_models(session, symbol, limit)]


@router.get("/models/{model_id}", response_model=ModelRead)
async def get_model(session: SessionDep, model_id: RowId) -> ModelRead:
    return ModelRead.model_validate(await service.get_model(session, model_id))


async def forecast_read(session: SessionDep, forecast: Forecast) -> ForecastRead:
    actual, scores = await service.score(session, forecast)
    stamps = iso_timestamps_of(forecast)
    points = [
        {"timestamp": ts, "predicted": p.predicted, "lower": p.lower, "upper": p.upper, "actual": a}
        for ts, p, a in zip(stamps, forecast.points, actual, strict=True)
    ]
    summary = ForecastSummary.model_validate(forecast).model_dump()
    return ForecastRead.model_validate({**summary, "points": points, "scores": scores.as_dict()})


def iso_timestamps_of(forecast: Forecast) -> list[str]:
    return iso_timestamps(np.array([to_epoch_us(p.ts) for p in forecast.points], dtype=np.int64))


@router.post("", response_model=ForecastRead, status_code=status.HTTP_201_CREATED)
async def create_forecast(session: SessionDep, settings: SettingsDep, body: ForecastCreate) -> ForecastRead:
    """Predict the next `horizon` bars after as_of with a stored model, or one fitted up to as_of."""
    forecast = await service.create_forecast(session, body, settings)
    return await forecast_read(session, forecast)


@router.get("", response_model=list[ForecastSummary])
async def list_forecasts(session: SessionDep, symbol: str | None = None, limit: Limit = 100) -> list[ForecastSummary]:
    return [ForecastSummary.model_validate(f) for f in await service.list_forecasts(session, symbol, limit)]


@router.get("/{forecast_id}", response_model=ForecastRead)
async def get_forecast(session: SessionDep, forecast_id: RowId) -> ForecastRead:
    """Predicted against actual per bar, and the scores over the bars that have arrived."""
    return await forecast_read(session, await service.get_forecast(session, forecast_id))


@router.get("/{forecast_id}/chart.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_chart(
    session: SessionDep,
    forecast_id: RowId,
    width: Annotated[int, Query(ge=300, le=4000)] = 1200,
    height: Annotated[int, Query(ge=200, le=3000)] = 600,
) -> Response:
    """History, the prediction with its 95% interval, and the actual closes since."""
    return Response(await service.forecast_png(session, forecast_id, width, height), media_type="image/png")
