"""Features of a close series for the regression models: lagged returns, distance from moving averages and
volatility, each known at the close of its bar; the target is the next bar's log return."""

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class FeatureSpec:
    lags: int = 5  # the last ``lags`` one-bar log returns
    averages: tuple[int, ...] = (5, 20)  # close / SMA(window) - 1
    volatility: tuple[int, ...] = (10, 20)  # standard deviation of the log returns over each window

    @property
    def lookback(self) -> int:
        """Closes needed for one row of features (a return needs two closes)."""
        return max((self.lags + 1, *self.averages, *(w + 1 for w in self.volatility)))

    @property
    def width(self) -> int:
        return self.lags + len(self.averages) + len(self.volatility)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "FeatureSpec":
        return cls(
            lags=int(data["lags"]),  # type: ignore[call-overload]
            averages=tuple(int(w) for w in data["averages"]),  # type: ignore[attr-defined]
            volatility=tuple(int(w) for w in data["volatility"]),  # type: ignore[attr-defined]
        )


def log_returns(close: Floats) -> Floats:
    """r[t] = log(close[t] / close[t-1]); r[0] is NaN."""
    out = np.full(close.size, np.nan)
    out[1:] = np.diff(np.log(close))
    return out


def _rolling_mean(values: Floats, window: int) -> Floats:
    out = np.full(values.size, np.nan)
    if values.size >= window:
        sums = np.cumsum(np.insert(values, 0, 0.0))
        out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


def _rolling_std(values: Floats, window: int) -> Floats:
    out = np.full(values.size, np.nan)
    if values.size >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window)
        out[window - 1 :] = windows.std(axis=1, ddof=1)
    return out


def feature_matrix(close: Floats, spec: FeatureSpec) -> Floats:
    """One row per bar (NaN where the lookback is not yet filled), ``spec.width`` columns."""
    returns = log_returns(close)
    columns = [np.concatenate([np.full(lag, np.nan), returns[: close.size - lag]]) for lag in range(spec.lags)]
    columns += [close / _rolling_mean(close, w) - 1.0 for w in spec.averages]
    columns += [_rolling_std(returns, w) for w in spec.volatility]
    return np.column_stack(columns)


def training_rows(close: Floats, spec: FeatureSpec) -> tuple[Floats, Floats]:
    """(features at t, log return from t to t+1) for every t with a full lookback and a next bar."""
    features = feature_matrix(close, spec)[:-1]
    target = log_returns(close)[1:]
    usable = ~np.isnan(features).any(axis=1)
    return features[usable], target[usable]


def last_row(close: Floats, spec: FeatureSpec) -> Floats:
    """The features at the last bar, from its lookback only (the recursive forecast calls this per step)."""
    return feature_matrix(close[-spec.lookback :], spec)[-1:]
