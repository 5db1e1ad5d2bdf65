"""Response bodies of the analytics endpoints."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from quantdesk.analytics.resample import Frequency
from quantdesk.market.intervals import Interval


class StatsRead(BaseModel):
    symbol: str
    interval: Interval
    frequency: Frequency | None = Field(description="Calendar period the bars were resampled to, if any.")
    periods_per_year: float = Field(description="Bars per year used to annualise.")
    count: int
    min: float
    max: float
    mean: float
    median: float
    std: float = Field(description="Sample standard deviation (ddof=1) of the close.")
    variance: float
    first: float
    last: float
    percent_change: float = Field(description="(last / first - 1) * 100")
    annualized_return_pct: float | None
    annualized_volatility_pct: float | None
    max_drawdown_pct: float
    start: datetime
    end: datetime


class EnrichedTable(BaseModel):
    symbol: str
    interval: Interval
    frequency: Frequency | None
    columns: list[str] = Field(description="timestamp first, then the bar, then derived columns.")
    rows: list[list[Any]] = Field(description="One row per bar; NaN (warm-up) is null.")
