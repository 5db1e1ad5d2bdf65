"""Strategies: each maps OHLCV columns and parameters to entry and exit signals.

Three kinds share one shape (``Strategy``): the built-ins below, users' rule strategies
(``rule_strategy``) and Python strategies (``plugins``: a file on the command line, or an installed package
on a server). A signal on bar i is decided with bar i's close; the simulator fills it at bar i+1's open (or
at bar i's close with ``fill="close"``). Crossovers only count where both averages exist, so the end of a
warm-up is never mistaken for a cross. Adding a built-in is one function plus its parameter table.
"""

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.analytics import indicators
from quantdesk.backtest.engine import Costs
from quantdesk.core.errors import ValidationFailed

Bool = NDArray[np.bool_]
# Indicators computed over one set of bars, by what they compute (e.g. ("sma", "close", 20.0)): shared by
# every run of a sweep, so that each is computed once per sweep, not once per combination.
Indicators = dict[Hashable, Any]


@dataclass(frozen=True)
class Decisions:
    """What a strategy decides at each bar's close: long entries and exits and, optionally, its own short
    rules (without them, a long/short run mirrors the long rules)."""

    long_entries: Bool
    long_exits: Bool
    short_entries: Bool | None = None
    short_exits: Bool | None = None


@dataclass(frozen=True)
class Signals:
    """Long entries/exits and, for long/short strategies, short entries/exits (all bar-aligned)."""

    long_entries: Bool
    long_exits: Bool
    short_entries: Bool
    short_exits: Bool


@dataclass(frozen=True)
class Param:
    default: float
    minimum: float
    maximum: float
    integer: bool = True


Build = Callable[[pd.DataFrame, dict[str, float], Indicators], Decisions]
Kind = Literal["built-in", "rule", "python"]


def _no_problem(_params: dict[str, float]) -> str | None:
    return None


def _window_lookback(params: dict[str, float]) -> int:
    return max((int(v) for k, v in params.items() if k in ("fast", "slow", "window")), default=1)


def _no_holding_limit(_params: dict[str, float]) -> float:
    return math.nan


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    params: dict[str, Param]
    build: Build
    check: Callable[[dict[str, float]], str | None] = _no_problem
    lookback: Callable[[dict[str, float]], int] = _window_lookback
    kind: Kind = "built-in"
    version: int | None = None  # a rule strategy's stored version
    stop_loss_pct: float | None = None  # defaults for a run that does not give its own
    take_profit_pct: float | None = None
    max_bars_held: Callable[[dict[str, float]], float] = _no_holding_limit  # NaN: none
    source: dict[str, Any] | None = field(default=None, compare=False)  # a rule strategy's document

    def warmup(self, params: dict[str, float]) -> int:
        """Bars before the first signal can appear."""
        return self.lookback(params) + 1


def crosses_above(a: pd.Series, b: pd.Series) -> Bool:
    """True on the bars where ``a`` moves from at or below ``b`` to above it (both defined on both bars)."""
    above = (a > b).to_numpy()
    defined = (a.notna() & b.notna()).to_numpy()
    out = np.zeros(len(a), dtype=bool)
    out[1:] = above[1:] & ~above[:-1] & defined[1:] & defined[:-1]
    return out


def indicator(cache: Indicators, key: tuple[Hashable, ...], compute: Callable[[], pd.Series]) -> pd.Series:
    """``compute()`` once per key and set of bars (keys as the rule evaluator writes them)."""
    if key not in cache:
        cache[key] = compute().to_numpy(dtype=np.float64)
    return pd.Series(cache[key], index=None, copy=False)


def _ma_cross(name: str, average: Callable[[pd.Series, int], pd.Series]) -> Build:
    def build(bars: pd.DataFrame, p: dict[str, float], cache: Indicators) -> Decisions:
        close = bars["close"].reset_index(drop=True)
        fast_window, slow_window = int(p["fast"]), int(p["slow"])
        fast = indicator(cache, (name, "close", float(fast_window)), lambda: average(close, fast_window))
        slow = indicator(cache, (name, "close", float(slow_window)), lambda: average(close, slow_window))
        return Decisions(crosses_above(fast, slow), crosses_above(slow, fast))

    return build


def _fast_below_slow(p: dict[str, float]) -> str | None:
    return None if p["fast"] < p["slow"] else f"fast ({p['fast']:g}) must be shorter than slow ({p['slow']:g})"


def _rsi_reversion(bars: pd.DataFrame, p: dict[str, float], _cache: Indicators) -> Decisions:
    rsi = indicators.rsi(bars["close"], int(p["window"]))
    return Decisions(
        crosses_above(pd.Series(p["lower"], index=rsi.index), rsi),
        crosses_above(rsi, pd.Series(p["upper"], index=rsi.index)),
    )


def _lower_below_upper(p: dict[str, float]) -> str | None:
    return None if p["lower"] < p["upper"] else f"lower ({p['lower']:g}) must be below upper ({p['upper']:g})"


def _bollinger_breakout(bars: pd.DataFrame, p: dict[str, float], _cache: Indicators) -> Decisions:
    bands = indicators.bollinger(bars["close"], int(p["window"]), p["k"])
    close = bars["close"]
    return Decisions(crosses_above(close, bands["upper"]), crosses_above(bands["middle"], close))


def _buy_and_hold(bars: pd.DataFrame, _p: dict[str, float], _cache: Indicators) -> Decisions:
    entries = np.zeros(len(bars), dtype=bool)
    entries[:1] = True
    return Decisions(entries, np.zeros(len(bars), dtype=bool))


WINDOW = Param(20, 1, 10_000)
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "sma_cross",
            "Long when the fast SMA crosses above the slow one; out (or short) on the cross back.",
            {"fast": Param(20, 1, 10_000), "slow": Param(50, 2, 10_000)},
            _ma_cross("sma", indicators.sma),
            _fast_below_slow,
        ),
        Strategy(
            "ema_cross",
            "As sma_cross with exponential averages.",
            {"fast": Param(12, 1, 10_000), "slow": Param(26, 2, 10_000)},
            _ma_cross("ema", indicators.ema),
            _fast_below_slow,
        ),
        Strategy(
            "rsi_reversion",
            "Long when RSI crosses below lower; out when it crosses above upper.",
            {"window": Param(14, 2, 1_000), "lower": Param(30, 0, 100, False), "upper": Param(70, 0, 100, False)},
            _rsi_reversion,
            _lower_below_upper,
        ),
        Strategy(
            "bollinger_breakout",
            "Long when the close breaks above the upper band; out when it falls below the middle.",
            {"window": WINDOW, "k": Param(2.0, 0.1, 10, False)},
            _bollinger_breakout,
        ),
        Strategy("buy_and_hold", "Long from the first bar to the last.", {}, _buy_and_hold),
    )
}
VALID_STRATEGIES = ", ".join(STRATEGIES)


def resolve(name: str, given: dict[str, float] | None) -> tuple[Strategy, dict[str, float]]:
    """A built-in strategy and its complete parameters, or a ValidationFailed that lists what is valid."""
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise ValidationFailed(f"unknown strategy '{name}'; valid ones: {VALID_STRATEGIES}")
    return strategy, bind(strategy, given)


def bind(strategy: Strategy, given: dict[str, float] | None) -> dict[str, float]:
    """The strategy's complete parameters (defaults for those not given), each checked against its table."""
    name = strategy.name
    given = given or {}
    unknown = sorted(set(given) - set(strategy.params))
    if unknown:
        valid = ", ".join(strategy.params) or "none"
        raise ValidationFailed(f"unknown parameter(s) {', '.join(unknown)} for {name}; its parameters: {valid}")
    params = {key: float(given.get(key, spec.default)) for key, spec in strategy.params.items()}
    for key, spec in strategy.params.items():
        value = params[key]
        if not spec.minimum <= value <= spec.maximum or (spec.integer and not float(value).is_integer()):
            kind = "a whole number" if spec.integer else "a number"
            raise ValidationFailed(
                f"{name}: {key} must be {kind} from {spec.minimum:g} to {spec.maximum:g}, got {value:g}"
            )
    problem = strategy.check(params)
    if problem:
        raise ValidationFailed(f"{name}: {problem}")
    return params


def signals(
    bars: pd.DataFrame,
    strategy: Strategy,
    params: dict[str, float],
    allow_short: bool = False,
    cache: Indicators | None = None,
) -> Signals:
    """Entries and exits. With ``allow_short``, a strategy without short rules mirrors its long ones: a long
    exit also opens a short and a long entry closes it. ``cache`` shares indicators between runs."""
    decided = strategy.build(bars, params, {} if cache is None else cache)
    entries, exits = decided.long_entries, decided.long_exits
    if not allow_short:
        none = np.zeros(len(bars), dtype=bool)
        return Signals(entries, exits, none, none.copy())
    short_entries = decided.short_entries if decided.short_entries is not None else exits.copy()
    short_exits = decided.short_exits if decided.short_exits is not None else entries.copy()
    return Signals(entries, exits, short_entries, short_exits)


def run_costs(costs: Costs, strategy: Strategy, params: dict[str, float]) -> Costs:
    """The run's costs with the strategy's own holding-time limit for these parameters, and its stop-loss
    and take-profit where the run gives none."""
    limit = strategy.max_bars_held(params)
    stop = strategy.stop_loss_pct if math.isnan(costs.stop_loss_pct) and strategy.stop_loss_pct else None
    take = strategy.take_profit_pct if math.isnan(costs.take_profit_pct) and strategy.take_profit_pct else None
    return replace(
        costs,
        max_bars_held=limit,
        stop_loss_pct=costs.stop_loss_pct if stop is None else stop,
        take_profit_pct=costs.take_profit_pct if take is None else take,
    )
