"""Python strategies: a module with a parameter table and a function from bars and parameters to signals.

    PARAMS = {"n": {"default": 20, "min": 2, "max": 200}}

    def signals(bars: pandas.DataFrame, params: dict[str, float]):
        ...  # return (entries, exits), or a dict with long_entries, long_exits[, short_entries, short_exits]

Optional: ``NAME`` (the file's stem otherwise), the module docstring as description, ``lookback(params)``
(bars before the first signal; 1 otherwise), ``check(params)`` (a sentence when the parameters make no run,
e.g. fast >= slow), ``STOP_LOSS_PCT`` and ``TAKE_PROFIT_PCT``. ``bars`` has the columns open, high, low,
close and volume and a UTC DatetimeIndex; the signals are decided at each bar's close, like the built-ins'.

The command line runs one from a file (``--strategy-file``); a server runs only those installed as
packages, found through the entry-point group ``quantdesk.strategies`` (docs/strategies.md says why: a
module runs with the server's rights, so only its administrator may add one).
"""

import importlib.util
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.backtest.rule_strategy import NAME, compile_document, param_table
from quantdesk.backtest.strategies import STRATEGIES, Decisions, Strategy
from quantdesk.core.errors import ValidationFailed

ENTRY_POINT_GROUP = "quantdesk.strategies"
SIGNAL_KEYS = ("long_entries", "long_exits", "short_entries", "short_exits")
log = logging.getLogger(__name__)


def from_module(module: ModuleType | Any, name: str | None = None) -> Strategy:
    """The strategy a module (or any object with the same attributes) defines, checked."""
    function = getattr(module, "signals", None)
    if not callable(function):
        raise ValidationFailed(f"{_label(module)} defines no signals(bars, params) function")
    strategy_name = name or getattr(module, "NAME", None) or _label(module)
    if not isinstance(strategy_name, str) or not NAME.match(strategy_name):
        raise ValidationFailed(
            f"strategy name {strategy_name!r} must be lower-case letters, digits and _ (set NAME in the module)"
        )
    params = param_table(getattr(module, "PARAMS", {}) or {})
    lookback: Callable[[dict[str, float]], int] = getattr(module, "lookback", lambda _p: 1)
    check: Callable[[dict[str, float]], str | None] = getattr(module, "check", lambda _p: None)
    return Strategy(
        name=strategy_name,
        description=((getattr(module, "__doc__", None) or "").strip().splitlines() or ["Python strategy"])[0][:500],
        params=params,
        build=lambda bars, p, _cache: _decisions(function, bars, p, strategy_name),
        check=check,
        lookback=lambda p: int(lookback(p)),
        kind="python",
        stop_loss_pct=getattr(module, "STOP_LOSS_PCT", None),
        take_profit_pct=getattr(module, "TAKE_PROFIT_PCT", None),
    )


def from_file(path: Path) -> Strategy:
    """A strategy from a file: a Python module (.py), or a rule document (.json) as the API takes it."""
    if not path.is_file():
        raise ValidationFailed(f"no strategy file {path}")
    if path.suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"{path} is not a JSON rule document: {exc}") from None
        if not isinstance(document, dict):
            raise ValidationFailed(f"{path} must hold one JSON object, a rule strategy")
        return compile_document(document)
    if path.suffix != ".py":
        raise ValidationFailed(f"{path}: a strategy file is a Python module (.py) or a rule document (.json)")
    stem = re.sub(r"\W", "_", path.stem).lower()
    spec = importlib.util.spec_from_file_location(f"quantdesk_strategy_{stem}", path)
    if spec is None or spec.loader is None:
        raise ValidationFailed(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module: report its failure as theirs
        raise ValidationFailed(f"{path} failed to load: {type(exc).__name__}: {exc}") from None
    return from_module(module, getattr(module, "NAME", None) or stem)


@cache
def installed() -> dict[str, Strategy]:
    """Strategies of installed packages (entry points of the group ``quantdesk.strategies``); a broken one
    or one whose name a built-in takes is logged and left out, so one bad package cannot stop a server."""
    found: dict[str, Strategy] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name in STRATEGIES:
            log.warning("installed strategy %s (%s) is ignored: a built-in has its name", point.name, point.value)
            continue
        try:
            found[point.name] = from_module(point.load(), point.name)
        except Exception:
            log.exception("installed strategy %s (%s) could not be loaded", point.name, point.value)
    return found


def _decisions(
    function: Callable[[pd.DataFrame, dict[str, float]], Any], bars: pd.DataFrame, params: dict[str, float], name: str
) -> Decisions:
    try:
        returned = function(bars, dict(params))
    except Exception as exc:  # the user's code: its failure is a bad strategy, not a server error
        raise ValidationFailed(f"strategy {name} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(returned, Mapping):
        unknown = sorted(set(returned) - set(SIGNAL_KEYS))
        if unknown or "long_entries" not in returned or "long_exits" not in returned:
            raise ValidationFailed(
                f"strategy {name} must return long_entries and long_exits (and short_*), got {sorted(returned)}"
            )
        arrays = {
            key: _flags(returned[key], len(bars), name, key) for key in SIGNAL_KEYS if returned.get(key) is not None
        }
        return Decisions(**arrays)
    if isinstance(returned, tuple) and len(returned) in (2, 4):
        return Decisions(
            *(_flags(value, len(bars), name, key) for value, key in zip(returned, SIGNAL_KEYS, strict=False))
        )
    raise ValidationFailed(
        f"strategy {name} must return (entries, exits) or a dict of signals, got {type(returned).__name__}"
    )


def _flags(value: object, n: int, name: str, key: str) -> np.ndarray:
    array = np.asarray(value.to_numpy() if isinstance(value, pd.Series) else value)
    if array.shape != (n,):
        raise ValidationFailed(f"strategy {name}: {key} has shape {array.shape}; one value per bar ({n}) is needed")
    if array.dtype != np.bool_:
        if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and np.isnan(array).any()):
            raise ValidationFailed(f"strategy {name}: {key} must be true/false per bar, got {array.dtype}")
        array = array != 0
    return np.ascontiguousarray(array, dtype=np.bool_)


def _label(module: object) -> str:
    return str(getattr(module, "__name__", type(module).__name__)).rsplit(".", 1)[-1]
