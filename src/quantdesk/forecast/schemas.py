"""Bodies of the forecasting endpoints."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.core.types import RowId
from quantdesk.market.intervals import Interval

MAX_HORIZON = 1000
KIND_HELP = "linear, ridge, gradient_boosting, naive or drift"


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    interval: Interval | None = Field(default=None, description="The instrument's only stored interval when omitted.")
    model: str = Field(default="linear", description=KIND_HELP)
    start: str | None = Field(
        default=None, description="First bar of the training window (ISO 8601); all history when omitted."
    )
    as_of: str | None = Field(
        default=None, description="Last bar of the training window (inclusive); the last stored bar when omitted."
    )


class ForecastCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, min_length=1, max_length=32, description="Required without model_id.")
    interval: Interval | None = None
    model: str = Field(default="linear", description=f"{KIND_HELP}; fitted up to as_of when model_id is not given")
    model_id: RowId | None = Field(default=None, description="A stored model (POST /api/v1/forecasts/models).")
    horizon: int = Field(default=30, ge=1, le=MAX_HORIZON, description="Bars to predict after as_of.")
    as_of: str | None = Field(
        default=None, description="The forecast's origin bar (inclusive); the last stored bar when omitted."
    )


class Errors(BaseModel):
    count: int
    mae: float | None
    rmse: float | None
    mape: float | None
    mase: float | None
    direction_accuracy: float | None


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    symbol: str
    interval: str
    kind: str
    train_start: datetime
    as_of: datetime
    bars: int
    features: dict[str, object]
    versions: dict[str, str]
    in_sample: Errors
    holdout: Errors
    residual_std: float | None


class Point(BaseModel):
    timestamp: datetime
    predicted: float
    lower: float
    upper: float
    actual: float | None


class ForecastSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    model_id: int
    symbol: str
    interval: str
    kind: str
    as_of: datetime
    origin_close: float
    horizon: int


class ForecastRead(ForecastSummary):
    points: list[Point]
    scores: Errors
