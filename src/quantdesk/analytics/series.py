"""Returns, rolling statistics, volatility, normalisation and drawdown of a price series."""

import numpy as np
import pandas as pd

ROLLING_STATS = ("mean", "std", "min", "max")


def simple_returns(close: pd.Series) -> pd.Series:
    returns: pd.Series = close.pct_change(fill_method=None)
    return returns


def log_returns(close: pd.Series) -> pd.Series:
    returns: pd.Series = np.log(close).diff()
    return returns


def cumulative_returns(close: pd.Series) -> pd.Series:
    """Return since the first bar: 0 on the first bar."""
    return close / float(close.iloc[0]) - 1.0


def rolling(close: pd.Series, window: int, stat: str) -> pd.Series:
    """Rolling mean, std (sample, ddof=1), min or max over ``window`` bars; NaN until the window fills."""
    windowed = close.rolling(window, min_periods=window)
    if stat == "std":
        return windowed.std(ddof=1)
    return getattr(windowed, stat)()  # type: ignore[no-any-return]


def volatility(close: pd.Series, window: int, periods_per_year: float | None = None) -> pd.Series:
    """Rolling sample std of simple returns; annualised by sqrt(periods per year) when given."""
    vol: pd.Series = simple_returns(close).rolling(window, min_periods=window).std(ddof=1)
    return vol * float(np.sqrt(periods_per_year)) if periods_per_year else vol


def normalize(close: pd.Series, base: float = 100.0) -> pd.Series:
    """The series rescaled so the first bar equals ``base``."""
    return close / float(close.iloc[0]) * base


def drawdown(close: pd.Series) -> pd.Series:
    """Fall from the running peak, as a fraction (0 at a new high, -0.25 when 25% below it)."""
    return close / close.cummax() - 1.0
