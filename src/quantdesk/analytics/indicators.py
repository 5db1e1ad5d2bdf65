"""Technical indicators, defined as TA-Lib defines them (tests compare against TA-Lib).

Averages that recurse (EMA, Wilder's RSI and ATR) start from the simple mean of their first
``window`` values, so the first value appears at the same bar as TA-Lib's and the rest agree.
"""

import numpy as np
import pandas as pd


def sma(close: pd.Series, window: int) -> pd.Series:
    return close.rolling(window, min_periods=window).mean()


def _first_valid(data: np.ndarray) -> int:
    if data.size and not np.isnan(data[0]).any():
        return 0  # the common case, without scanning a million values
    valid = np.flatnonzero(~np.isnan(data).any(axis=1) if data.ndim == 2 else ~np.isnan(data))
    return int(valid[0]) if valid.size else data.shape[0]


def _seeded_average(data: np.ndarray, window: int, alpha: float) -> np.ndarray:
    """Recursive average of each column, seeded with the mean of its first ``window`` values after
    any leading NaNs. Positional numpy work: label alignment of a million rows costs more than the
    average itself."""
    out = np.full(data.shape, np.nan)
    first = _first_valid(data)
    seed_at = first + window - 1
    if seed_at >= data.shape[0]:
        return out
    tail = data[seed_at:].copy()
    tail[0] = data[first : seed_at + 1].mean(axis=0)
    out[seed_at:] = pd.DataFrame(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy().reshape(tail.shape)
    return out


def _seeded_ewm(values: pd.Series, window: int, alpha: float) -> pd.Series:
    return pd.Series(_seeded_average(values.to_numpy(dtype=np.float64), window, alpha), index=values.index)


def ema(close: pd.Series, window: int) -> pd.Series:
    return _seeded_ewm(close, window, 2.0 / (window + 1))


def rsi(close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's relative strength index, 0 to 100 (50 where the window saw no change at all)."""
    change = np.diff(close.to_numpy(dtype=np.float64), prepend=np.nan)
    rises, falls = np.where(change > 0, change, 0.0), np.where(change < 0, -change, 0.0)
    rises[0] = falls[0] = np.nan  # the first bar has no change
    gain = _seeded_average(rises, window, 1.0 / window)
    loss = _seeded_average(falls, window, 1.0 / window)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + gain / loss)  # loss 0 and gain > 0: exactly 100
    value[(gain == 0) & (loss == 0)] = 50.0
    return pd.Series(value, index=close.index)


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
