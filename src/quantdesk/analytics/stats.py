"""Summary statistics of a bar series."""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from quantdesk.analytics.series import drawdown, simple_returns


@dataclass(frozen=True)
class Summary:
    """Statistics of the close, plus risk and return figures over the covered range."""

    count: int
    min: float
    max: float
    mean: float
    median: float
    std: float  # sample standard deviation (ddof=1) of the close
    variance: float
    first: float
    last: float
    percent_change: float  # (last / first - 1) * 100
    annualized_return_pct: float | None  # geometric, from the mean log return per bar
    annualized_volatility_pct: float | None  # sample std of simple returns * sqrt(periods per year)
    max_drawdown_pct: float  # deepest fall from a running peak, as a negative percentage
    start: datetime
    end: datetime


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def summarize(bars: pd.DataFrame, periods_per_year: float) -> Summary:
    close = bars["close"]
    returns = simple_returns(close).dropna()
    log_mean = np.log(close).diff().mean()
    return Summary(
        count=int(close.size),
        min=float(close.min()),
        max=float(close.max()),
        mean=float(close.mean()),
        median=float(close.median()),
        std=float(close.std(ddof=1)) if close.size > 1 else 0.0,
        variance=float(close.var(ddof=1)) if close.size > 1 else 0.0,
        first=float(close.iloc[0]),
        last=float(close.iloc[-1]),
        percent_change=float((close.iloc[-1] / close.iloc[0] - 1.0) * 100.0),
        annualized_return_pct=_finite((np.exp(log_mean * periods_per_year) - 1.0) * 100.0) if returns.size else None,
        annualized_volatility_pct=_finite(returns.std(ddof=1) * np.sqrt(periods_per_year) * 100.0)
        if returns.size > 1
        else None,
        max_drawdown_pct=float(drawdown(close).min() * 100.0),
        start=close.index[0].to_pydatetime(),
        end=close.index[-1].to_pydatetime(),
    )
