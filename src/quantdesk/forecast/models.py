"""Stored forecasting: fitted models, forecasts, and every predicted point (actuals are joined from bars)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.types import UTCTimestamp


class ForecastModel(Base):
    """A model fitted on one instrument's bars up to ``as_of``, serialised with the library versions it needs."""

    __tablename__ = "forecast_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(32))
    train_start: Mapped[datetime] = mapped_column(UTCTimestamp)
    as_of: Mapped[datetime] = mapped_column(UTCTimestamp)  # the last bar it was fitted on
    bars: Mapped[int]
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    versions: Mapped[dict[str, str]] = mapped_column(JSON)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    in_sample: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout: Mapped[dict[str, Any]] = mapped_column(JSON)
    residual_std: Mapped[float | None]
    naive_scale: Mapped[float | None]


class Forecast(Base):
    """The next ``horizon`` bars after ``as_of``, predicted by one stored model."""

    __tablename__ = "forecasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    model_id: Mapped[int] = mapped_column(ForeignKey("forecast_models.id", ondelete="CASCADE"), index=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime] = mapped_column(UTCTimestamp)
    origin_close: Mapped[float]
    horizon: Mapped[int]
    points: Mapped[list["ForecastPoint"]] = relationship(
        order_by="ForecastPoint.step", cascade="all, delete-orphan", lazy="raise"
    )


class ForecastPoint(Base):
    __tablename__ = "forecast_points"

    forecast_id: Mapped[int] = mapped_column(ForeignKey("forecasts.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCTimestamp)
    predicted: Mapped[float]
    lower: Mapped[float]
    upper: Mapped[float]
