"""Walk-forward evaluation: roll the forecast origin through history, refit at each origin, forecast the
next ``horizon`` bars, and pool the errors per model next to the naive baseline's."""

from dataclasses import dataclass

import numpy as np

from quantdesk.core.errors import ValidationFailed
from quantdesk.forecast import forecasters, scoring
from quantdesk.forecast.features import FeatureSpec, Floats
from quantdesk.forecast.training import MIN_TRAINING_ROWS


@dataclass(frozen=True)
class Fold:
    origin: int  # index of the last bar the models saw
    errors: dict[str, scoring.Errors]


@dataclass(frozen=True)
class Evaluation:
    horizon: int
    folds: list[Fold]
    pooled: dict[str, scoring.Errors]  # every fold's points together, per model


def origins(size: int, horizon: int, folds: int, spec: FeatureSpec) -> list[int]:
    """The last fold ends at the last bar; each earlier one ``horizon`` bars before the next."""
    first = size - folds * horizon
    need = spec.lookback + MIN_TRAINING_ROWS
    if first < need:
        raise ValidationFailed(
            f"{folds} folds of {horizon} bars need at least {need + folds * horizon} bars "
            f"({need} before the first origin); the history has {size}: fewer folds or a shorter horizon"
        )
    return [first + i * horizon for i in range(folds)]


def walk_forward(close: Floats, kinds: list[str], horizon: int, folds: int, spec: FeatureSpec) -> Evaluation:
    models = list(dict.fromkeys([*kinds, "naive"]))
    results: list[Fold] = []
    pooled: dict[str, list[tuple[Floats, Floats, Floats, Floats]]] = {kind: [] for kind in models}
    for origin in origins(close.size, horizon, folds, spec):
        seen, actual = close[:origin], close[origin : origin + horizon]
        scale = np.full(actual.size, scoring.naive_scale(seen))
        reference = np.full(actual.size, seen[-1])
        fold: dict[str, scoring.Errors] = {}
        for kind in models:
            model = forecasters.create(kind, spec)
            model.fit(seen)
            predicted = model.predict(seen, actual.size)
            fold[kind] = scoring.errors(predicted, actual, reference, scale)
            pooled[kind].append((predicted, actual, reference, scale))
        results.append(Fold(origin - 1, fold))
    return Evaluation(horizon, results, {kind: _pool(parts) for kind, parts in pooled.items()})


def _pool(parts: list[tuple[Floats, Floats, Floats, Floats]]) -> scoring.Errors:
    predicted, actual, reference, scale = (np.concatenate(column) for column in zip(*parts, strict=True))
    return scoring.errors(predicted, actual, reference, scale)
