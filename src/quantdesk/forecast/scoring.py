"""Forecast errors, the same for hold-outs, walk-forward folds and stored forecasts as actuals arrive.

- MAE, RMSE: in price units; MAPE: mean of |error| / actual, in percent.
- MASE: MAE divided by the mean absolute one-bar change of the training history (Hyndman and Koehler's
  scaling): below 1 beats the in-sample naive forecast, above 1 loses to it.
- Direction accuracy: of the points where the forecast moves away from the reference close (the previous
  close for one-step forecasts, the origin's close for a multi-step forecast), the share whose actual
  moved the same way, in percent; undefined for a forecast that never moves (naive).
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from quantdesk.forecast.features import Floats


@dataclass(frozen=True)
class Errors:
    count: int
    mae: float | None
    rmse: float | None
    mape: float | None
    mase: float | None
    direction_accuracy: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _value(x: float | np.floating[Any]) -> float | None:
    return float(x) if np.isfinite(x) else None


def errors(predicted: Floats, actual: Floats, reference: Floats | float, scale: Floats | float) -> Errors:
    """Errors of ``predicted`` against ``actual``; ``reference`` is the close each forecast moves from and
    ``scale`` the naive in-sample MAE of each point's training history (scalars apply to every point)."""
    if actual.size == 0:
        return Errors(0, None, None, None, None, None)
    error = predicted - actual
    absolute = np.abs(error)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = absolute / np.broadcast_to(scale, absolute.shape)
        moved = np.sign(predicted - reference)
        hits = moved[moved != 0] == np.sign(actual - reference)[moved != 0]
        return Errors(
            count=int(actual.size),
            mae=_value(absolute.mean()),
            rmse=_value(np.sqrt(np.mean(error**2))),
            mape=_value(np.mean(absolute / np.abs(actual)) * 100.0),
            mase=_value(scaled.mean()),
            direction_accuracy=_value(hits.mean() * 100.0) if hits.size else None,
        )


def naive_scale(close: Floats) -> float:
    """Mean absolute one-bar change: the in-sample MAE of the naive forecast."""
    return float(np.mean(np.abs(np.diff(close)))) if close.size > 1 else float("nan")
