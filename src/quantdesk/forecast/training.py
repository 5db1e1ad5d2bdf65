"""Fit a model on a close history: hold-out errors from a fit on the earlier part, then the final fit on
all of it, with its in-sample errors and the spread that sizes prediction intervals."""

import math
from dataclasses import dataclass

import numpy as np

from quantdesk.core.errors import ValidationFailed
from quantdesk.forecast import forecasters, scoring
from quantdesk.forecast.features import FeatureSpec, Floats
from quantdesk.forecast.forecasters import Forecaster

HOLDOUT_FRACTION = 0.2
MIN_HOLDOUT = 10
MIN_TRAINING_ROWS = 30
Z_95 = 1.959963984540054  # two-sided 95% of a normal distribution


@dataclass(frozen=True)
class Trained:
    forecaster: Forecaster
    spec: FeatureSpec
    bars: int
    in_sample: scoring.Errors
    holdout: scoring.Errors
    residual_std: float  # of the hold-out's one-step log errors
    naive_scale: float  # MASE's denominator, from the whole training history


def minimum_bars(spec: FeatureSpec) -> int:
    return spec.lookback + MIN_TRAINING_ROWS + MIN_HOLDOUT


def one_step(forecaster: Forecaster, close: Floats, first: int) -> Floats:
    """Forecasts of ``close[first:]``, each from the history before it (``first`` >= the lookback)."""
    if isinstance(forecaster, forecasters.Regression):
        return forecaster.one_step(close[:-1])[-(close.size - first) :]
    previous = close[first - 1 : -1]
    if isinstance(forecaster, forecasters.Drift):
        return previous + forecaster.slope
    return previous.copy()


def train(kind: str, close: Floats, spec: FeatureSpec) -> Trained:
    need = minimum_bars(spec)
    if close.size < need:
        raise ValidationFailed(
            f"'{kind}' needs at least {need} bars ({spec.lookback} for the features, {MIN_TRAINING_ROWS} to "
            f"learn from, {MIN_HOLDOUT} held out); the history has {close.size}: widen the range"
        )
    split = close.size - max(MIN_HOLDOUT, int(close.size * HOLDOUT_FRACTION))
    probe = forecasters.create(kind, spec)
    probe.fit(close[:split])
    predicted, actual = one_step(probe, close, split), close[split:]
    holdout = scoring.errors(predicted, actual, close[split - 1 : -1], scoring.naive_scale(close[:split]))
    residuals = np.log(actual / predicted)
    final = forecasters.create(kind, spec)
    final.fit(close)
    first = spec.lookback
    fitted = one_step(final, close, first)
    in_sample = scoring.errors(fitted, close[first:], close[first - 1 : -1], scoring.naive_scale(close))
    return Trained(
        forecaster=final,
        spec=spec,
        bars=int(close.size),
        in_sample=in_sample,
        holdout=holdout,
        residual_std=float(residuals.std(ddof=1)),
        naive_scale=scoring.naive_scale(close),
    )


def interval(predicted: Floats, residual_std: float) -> tuple[Floats, Floats]:
    """A 95% band: the hold-out's one-step log spread, widening with the square root of the step (errors
    of a recursive forecast accumulate like a random walk's)."""
    spread = Z_95 * residual_std * np.sqrt(np.arange(1, predicted.size + 1))
    if not math.isfinite(residual_std):
        spread = np.zeros(predicted.size)
    return predicted * np.exp(-spread), predicted * np.exp(spread)
