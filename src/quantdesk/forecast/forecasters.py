"""The forecasting models behind one small interface: fit on a close history, predict the next N closes.

Regression models learn the next bar's log return from ``features``; predictions are recursive: each
predicted close is appended to the history and the features recomputed for the step after. Baselines
``naive`` (the last close, for every step) and ``drift`` (the average change of the training history
added per step) fit nothing the data could overfit, which is why they are the yardstick.
"""

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import sklearn
from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quantdesk.core.errors import ValidationFailed
from quantdesk.forecast.features import FeatureSpec, Floats, last_row, training_rows

# What skops may rebuild beyond its own safe set: a boosted model's trees. Anything else in a stored
# model is refused rather than executed.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


class Forecaster(Protocol):
    kind: str

    def fit(self, close: Floats) -> None: ...

    def predict(self, close: Floats, steps: int) -> Floats:
        """The next ``steps`` closes after the last one of ``close``."""
        ...

    def state(self) -> bytes:
        """The fitted parameters, for storage."""
        ...


@dataclass
class Naive:
    kind: str = "naive"

    def fit(self, close: Floats) -> None:
        return None

    def predict(self, close: Floats, steps: int) -> Floats:
        return np.full(steps, close[-1])

    def state(self) -> bytes:
        return b"{}"


@dataclass
class Drift:
    """The last close plus, per step, the average change over the training history (Hyndman's drift)."""

    kind: str = "drift"
    slope: float = 0.0

    def fit(self, close: Floats) -> None:
        self.slope = float((close[-1] - close[0]) / (close.size - 1)) if close.size > 1 else 0.0

    def predict(self, close: Floats, steps: int) -> Floats:
        return np.asarray(close[-1] + self.slope * np.arange(1, steps + 1), dtype=np.float64)

    def state(self) -> bytes:
        return json.dumps({"slope": self.slope}).encode()


@dataclass
class Regression:
    """A scikit-learn regressor of the next log return on the features, applied recursively."""

    kind: str
    estimator: Any
    spec: FeatureSpec

    def fit(self, close: Floats) -> None:
        features, target = training_rows(close, self.spec)
        self.estimator.fit(features, target)

    def predict(self, close: Floats, steps: int) -> Floats:
        history = list(close[-self.spec.lookback :])
        out = np.empty(steps)
        for step in range(steps):
            window = np.asarray(history)
            change = float(self.estimator.predict(last_row(window, self.spec))[0])
            out[step] = window[-1] * np.exp(change)
            history = [*history[1:], out[step]]
        return out

    def one_step(self, close: Floats) -> Floats:
        """Predicted next closes for every bar with a full lookback (the history known at each bar)."""
        features, _ = training_rows(np.append(close, close[-1]), self.spec)
        return np.asarray(close[-features.shape[0] :] * np.exp(self.estimator.predict(features)), dtype=np.float64)

    def state(self) -> bytes:
        import skops.io

        return bytes(skops.io.dumps(self.estimator))


ESTIMATORS: dict[str, Callable[[], RegressorMixin]] = {
    "linear": LinearRegression,
    "ridge": lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
    "gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, random_state=0),
}
KINDS = (*ESTIMATORS, "naive", "drift")


def create(kind: str, spec: FeatureSpec) -> Forecaster:
    if kind == "naive":
        return Naive()
    if kind == "drift":
        return Drift()
    if kind not in ESTIMATORS:
        raise ValidationFailed(f"unknown model '{kind}'; valid ones: {', '.join(KINDS)}")
    return Regression(kind, ESTIMATORS[kind](), spec)


def restore(kind: str, spec: FeatureSpec, state: bytes) -> Forecaster:
    """The fitted model back from ``Forecaster.state()`` (library versions are checked by the caller)."""
    if kind == "naive":
        return Naive()
    if kind == "drift":
        return Drift(slope=float(json.loads(state)["slope"]))
    import skops.io

    return Regression(kind, skops.io.load(io.BytesIO(state), trusted=TRUSTED_TYPES), spec)


def library_versions() -> dict[str, str]:
    """What a stored model depends on; a model saved under other versions must be retrained."""
    import skops

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "skops": skops.__version__}
