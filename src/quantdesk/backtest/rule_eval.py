"""Evaluating rule trees over bar arrays, vectorised with numpy, each indicator computed once.

Every indicator call is looked up in an ``Indicators`` cache by what it computes (the function, its
input and its numbers once parameters are substituted), so ``sma(close, 20)`` written twice, or met again
in the next combination of a sweep, is computed once; a sweep shares one cache across all its
combinations. Formulas are those of ``quantdesk.analytics.indicators`` (docs/analytics.md) and
``strategies.crosses_above``. A comparison with an undefined value (an indicator in its warm-up) is false.
"""

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.analytics import indicators
from quantdesk.backtest import rule_syntax as syntax
from quantdesk.backtest.rule_syntax import (
    Arg,
    Arith,
    Call,
    Column,
    Compare,
    Logic,
    Negate,
    Node,
    Not,
    Num,
    Param,
    Truth,
)
from quantdesk.core.errors import ValidationFailed

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
Value = float | bool | Floats | Bools
Indicators = dict[Hashable, Any]  # computed indicators by what they compute (see ``Evaluator.key``)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def crossed_above(a: Value, b: Value, n: int) -> Bools:
    """From at or below to above, both defined on both bars (as ``strategies.crosses_above``): a comparison
    with NaN is false, so ``a > b`` now and ``a <= b`` before already require both defined on both bars."""
    a, b = np.broadcast_to(np.asarray(a, dtype=np.float64), n), np.broadcast_to(np.asarray(b, dtype=np.float64), n)
    out = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        np.logical_and(a[1:] > b[1:], a[:-1] <= b[:-1], out=out[1:])
    return out


def constant(node: Node, params: dict[str, float]) -> float:
    """The value of a constant expression (numbers, parameters, arithmetic, abs/min/max of constants)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Param):
        return params[node.name]
    if isinstance(node, Negate):
        return -constant(node.operand, params)
    if isinstance(node, Arith):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(_ARITH[node.op](np.float64(constant(node.left, params)), constant(node.right, params)))
    if isinstance(node, Call) and node.function in syntax.CONSTANT_FOLDING:
        values = [constant(arg, params) for arg in node.args]
        return float({"abs": np.abs, "min": np.minimum, "max": np.maximum}[node.function](*values))
    raise TypeError(f"not a constant: {node}")  # the parser's kinds make this unreachable


def argument_problem(tree: Node, params: dict[str, float]) -> str | None:
    """The first window, lag or factor that these parameters make invalid (e.g. ``sma(close, n - 5)`` with
    n = 3), so that a run or a sweep's combination is refused before it starts."""
    if isinstance(tree, Call):
        for arg, role in zip(tree.args, syntax.FUNCTIONS[tree.function].args, strict=False):
            if role is not Arg.values:
                value = constant(arg, params)
                whole = np.isfinite(value) and float(value).is_integer()
                if role is Arg.window and not (whole and value >= 1):
                    return f"{tree.function} needs a whole number of bars of 1 or more, got {value:g}"
                if role is Arg.lag and not (whole and value >= 0):
                    return (
                        f"{tree.function} looks back only: its lag must be a whole number of 0 or more, got {value:g}"
                    )
                if role is Arg.factor and not np.isfinite(value):
                    return f"{tree.function} needs a finite number, got {value:g}"
    for child in children(tree):
        problem = argument_problem(child, params)
        if problem:
            return problem
    return None


def lookback(tree: Node, params: dict[str, float]) -> int:
    """Bars an expression needs before its first defined value (0 for a column, 20 more for an sma(.., 21)...)."""
    if isinstance(tree, Call):
        spec = syntax.FUNCTIONS[tree.function]
        inner = max((lookback(arg, params) for arg in tree.args), default=0)
        numbers = [
            int(constant(a, params)) for a, role in zip(tree.args, spec.args, strict=False) if role is not Arg.values
        ]
        extra = _own_lookback(tree.function, numbers)
        return inner + extra
    return max((lookback(child, params) for child in children(tree)), default=0)


def _own_lookback(function: str, numbers: list[int]) -> int:
    if function in ("macd_line",):
        return max(numbers) - 1
    if function in ("macd_signal", "macd_hist"):
        return max(numbers[:2]) - 1 + numbers[2] - 1
    if function in ("rsi", "returns", "shift", "atr"):
        return numbers[0]
    if function in ("crosses_above", "crosses_below"):
        return 1
    return numbers[0] - 1 if numbers else 0


def children(tree: Node) -> tuple[Node, ...]:
    if isinstance(tree, Call):
        return tree.args
    if isinstance(tree, Arith | Compare):
        return (tree.left, tree.right)
    if isinstance(tree, Logic):
        return tree.terms
    if isinstance(tree, Negate | Not):
        return (tree.operand,)
    return ()


class Evaluator:
    """Evaluates trees over one set of bars; ``cache`` may be shared by every run over the same bars."""

    def __init__(self, bars: pd.DataFrame, cache: Indicators | None = None) -> None:
        self.bars = bars
        self.n = len(bars)
        self.cache: Indicators = {} if cache is None else cache
        self.computed: Counter[str] = self.cache.setdefault("computed", Counter())

    def condition(self, tree: Node, params: dict[str, float]) -> Bools:
        value = self.value(tree, params)
        return np.broadcast_to(np.asarray(value, dtype=bool), self.n).copy()

    def series(self, tree: Node, params: dict[str, float]) -> Floats:
        value = self.value(tree, params)
        return np.broadcast_to(np.asarray(value, dtype=np.float64), self.n).copy()

    def value(self, tree: Node, params: dict[str, float]) -> Value:  # noqa: C901 - one branch per node type
        if isinstance(tree, Num | Param) or (isinstance(tree, Arith | Negate) and self._is_constant(tree)):
            return constant(tree, params)
        if isinstance(tree, Truth):
            return tree.value
        if isinstance(tree, Column):
            return self.column(tree.name)
        if isinstance(tree, Call):
            return self.call(tree, params)
        if isinstance(tree, Negate):
            return np.negative(self.value(tree.operand, params))
        if isinstance(tree, Arith):
            with np.errstate(divide="ignore", invalid="ignore"):
                return _ARITH[tree.op](self.value(tree.left, params), self.value(tree.right, params))  # type: ignore[no-any-return]
        if isinstance(tree, Compare):
            with np.errstate(invalid="ignore"):
                return _COMPARE[tree.op](self.value(tree.left, params), self.value(tree.right, params))  # type: ignore[no-any-return]
        if isinstance(tree, Not):
            return np.logical_not(self.value(tree.operand, params))
        if isinstance(tree, Logic):
            combine = np.logical_and if tree.op == "and" else np.logical_or
            result = self.value(tree.terms[0], params)
            for term in tree.terms[1:]:
                result = combine(result, self.value(term, params))
            return result
        raise TypeError(f"unknown node {tree}")  # pragma: no cover - the parser builds only the nodes above

    def _is_constant(self, tree: Node) -> bool:
        if isinstance(tree, Num | Param):
            return True
        if isinstance(tree, Call):
            return tree.function in syntax.CONSTANT_FOLDING and all(self._is_constant(a) for a in tree.args)
        if isinstance(tree, Arith | Negate):
            return all(self._is_constant(child) for child in children(tree))
        return False

    def column(self, name: str) -> Floats:
        key = ("column", name)
        if key not in self.cache:
            self.cache[key] = self.bars[name].to_numpy(dtype=np.float64)
        return self.cache[key]  # type: ignore[no-any-return]

    def key(self, tree: Node, params: dict[str, float]) -> Hashable:
        """What a subtree computes, with parameters replaced by their values: equal keys, equal values."""
        if isinstance(tree, Column):
            return tree.name
        if self._is_constant(tree):
            return constant(tree, params)
        if isinstance(tree, Call):
            return (tree.function, *(self.key(arg, params) for arg in tree.args))
        return (type(tree).__name__, getattr(tree, "op", None), *(self.key(c, params) for c in children(tree)))

    def call(self, tree: Call, params: dict[str, float]) -> Value:
        name = tree.function
        if name in ("crosses_above", "crosses_below"):
            a, b = (self.value(arg, params) for arg in tree.args)
            return crossed_above(a, b, self.n) if name == "crosses_above" else crossed_above(b, a, self.n)
        if self._is_constant(tree):
            return constant(tree, params)
        key = self.key(tree, params)
        if key not in self.cache:
            self.cache[key] = self.compute(tree, params)
            self.computed[name] += 1
        return self.cache[key]  # type: ignore[no-any-return]

    def compute(self, tree: Call, params: dict[str, float]) -> Floats:
        """One indicator over the whole series (its inner expressions through the cache)."""
        name = tree.function
        if name == "atr":
            window = int(constant(tree.args[0], params))
            high, low, close = (pd.Series(self.column(c)) for c in ("high", "low", "close"))
            return indicators.atr(high, low, close, window).to_numpy()
        values = self.series(tree.args[0], params)
        numbers = [constant(arg, params) for arg in tree.args[1:]]
        if name in ("abs", "min", "max"):
            other = [self.series(arg, params) for arg in tree.args[1:]]
            return {"abs": np.abs, "min": np.minimum, "max": np.maximum}[name](values, *other)  # type: ignore[no-any-return]
        return _INDICATORS[name](self, tree, values, numbers, params)


def _series(values: Floats) -> pd.Series:
    return pd.Series(values, copy=False)


def _rolling(function: str) -> Callable[["Evaluator", Call, Floats, list[float], dict[str, float]], Floats]:
    def compute(_e: Evaluator, _t: Call, values: Floats, numbers: list[float], _p: dict[str, float]) -> Floats:
        window = int(numbers[0])
        rolling = _series(values).rolling(window, min_periods=window)
        if function == "std":
            return rolling.std(ddof=1).to_numpy()
        if function == "pstd":
            return rolling.std(ddof=0).to_numpy()
        return getattr(rolling, function)().to_numpy()  # type: ignore[no-any-return]

    return compute


def _via(function: str, *pick: int) -> Callable[[Evaluator, Call, Floats, list[float], dict[str, float]], Floats]:
    """An indicator computed from another call (through the cache), e.g. bb_middle(x, n) is sma(x, n)."""

    def compute(e: Evaluator, t: Call, _v: Floats, _n: list[float], params: dict[str, float]) -> Floats:
        return e.series(Call(function, tuple(t.args[i] for i in pick)), params)

    return compute


def _bands(sign: float) -> Callable[[Evaluator, Call, Floats, list[float], dict[str, float]], Floats]:
    def compute(e: Evaluator, t: Call, _v: Floats, numbers: list[float], params: dict[str, float]) -> Floats:
        middle = e.series(Call("sma", t.args[:2]), params)
        spread = e.series(Call("_pstd", t.args[:2]), params) * numbers[1]
        return middle + spread if sign > 0 else middle - spread

    return compute


def _ema(_e: Evaluator, _t: Call, values: Floats, numbers: list[float], _p: dict[str, float]) -> Floats:
    return indicators.ema(_series(values), int(numbers[0])).to_numpy()


def _rsi(_e: Evaluator, _t: Call, values: Floats, numbers: list[float], _p: dict[str, float]) -> Floats:
    return indicators.rsi(_series(values), int(numbers[0])).to_numpy()


def _macd_line(e: Evaluator, t: Call, _v: Floats, _n: list[float], params: dict[str, float]) -> Floats:
    fast, slow = e.series(Call("ema", t.args[:2]), params), e.series(Call("ema", (t.args[0], t.args[2])), params)
    return fast - slow


def _macd_signal(e: Evaluator, t: Call, _v: Floats, numbers: list[float], params: dict[str, float]) -> Floats:
    line = e.series(Call("macd_line", t.args[:3]), params)
    return indicators.ema(_series(line), int(numbers[2])).to_numpy()


def _macd_hist(e: Evaluator, t: Call, _v: Floats, _n: list[float], params: dict[str, float]) -> Floats:
    return e.series(Call("macd_line", t.args[:3]), params) - e.series(Call("macd_signal", t.args), params)


def _shift(_e: Evaluator, _t: Call, values: Floats, numbers: list[float], _p: dict[str, float]) -> Floats:
    lag = int(numbers[0])
    out = np.full(values.size, np.nan)
    out[lag:] = values[: values.size - lag]
    return out


def _returns(e: Evaluator, t: Call, values: Floats, _n: list[float], params: dict[str, float]) -> Floats:
    before = e.series(Call("shift", t.args), params)
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / before - 1.0


_INDICATORS: dict[str, Callable[[Evaluator, Call, Floats, list[float], dict[str, float]], Floats]] = {
    "sma": _rolling("mean"),
    "rolling_mean": _via("sma", 0, 1),
    "rolling_std": _rolling("std"),
    "_pstd": _rolling("pstd"),
    "highest": _rolling("max"),
    "lowest": _rolling("min"),
    "ema": _ema,
    "rsi": _rsi,
    "macd_line": _macd_line,
    "macd_signal": _macd_signal,
    "macd_hist": _macd_hist,
    "bb_upper": _bands(1.0),
    "bb_middle": _via("sma", 0, 1),
    "bb_lower": _bands(-1.0),
    "shift": _shift,
    "returns": _returns,
}


def check_numbers(trees: list[Node], params: dict[str, float]) -> None:
    """ValidationFailed for the first invalid window, lag or factor under these parameters."""
    for tree in trees:
        problem = argument_problem(tree, params)
        if problem:
            raise ValidationFailed(problem)
