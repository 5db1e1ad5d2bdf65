"""Technical indicators, defined as TA-Lib defines them (tests compare against TA-Lib).

Averages that recurse (EMA, Wilder's RSI and ATR) start from the simple mean of their first
``window`` values, so the first value appears at the same bar as TA-Lib's and the rest agree.
"""

import numpy as np
import pandas as pd


def sma(close: pd.Series, window: int) -> pd.Series:
    return close.rolling(window, min_periods=window).mean()


def _seeded_ewm(values: pd.Series, window: int, alpha: float) -> pd.Series:
    """Recursive average seeded with the mean of the first ``window`` valid values."""
    valid = values.dropna()
    out = pd.Series(np.nan, index=values.index, dtype=np.float64)
    if len(valid) < window:
        return out
    seeded = valid.iloc[window - 1 :].copy()
    seeded.iloc[0] = valid.iloc[:window].mean()
    out.loc[seeded.index] = seeded.ewm(alpha=alpha, adjust=False).mean()
    return out


def ema(close: pd.Series, window: int) -> pd.Series:
    return _seeded_ewm(close, window, 2.0 / (window + 1))


def rsi(close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's relative strength index, 0 to 100."""
    change = close.diff()
    gain = _seeded_ewm(change.clip(lower=0.0), window, 1.0 / window)
    loss = _seeded_ewm(-change.clip(upper=0.0), window, 1.0 / window)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + gain / loss)
    # No losses in the window: RSI is 100 (gain / 0 is inf above, which gives exactly that).
    return value.where(~((loss == 0) & (gain == 0)), 50.0)


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (fast EMA - slow EMA), its signal EMA, and the histogram (line - signal)."""
    line = ema(close, fast) - ema(close, slow)
    signal_line = ema(line, signal)
    return pd.DataFrame({"line": line, "signal": signal_line, "hist": line - signal_line})


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Middle band (SMA) and bands k population standard deviations away, as Bollinger defines them."""
    middle = sma(close, window)
    spread = close.rolling(window, min_periods=window).std(ddof=0) * k
    return pd.DataFrame({"upper": middle + spread, "middle": middle, "lower": middle - spread})


def atr(high: pd.Series, low: pd.Series, close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's average true range; the first bar has no previous close and no true range."""
    previous = close.shift(1)
    true_range = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(axis=1)
    true_range.iloc[0] = np.nan
    return _seeded_ewm(true_range, window, 1.0 / window)
