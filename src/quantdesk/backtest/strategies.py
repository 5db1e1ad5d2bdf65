"""Built-in strategies: each maps OHLCV columns and parameters to entry and exit signals.

A signal on bar i is decided with bar i's close; the simulator fills it at bar i+1's open (or at
bar i's close with ``fill="close"``). Crossovers only count where both averages exist, so the end of a
warm-up is never mistaken for a cross. Adding a strategy is one function plus its parameter table.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.analytics import indicators
from quantdesk.core.errors import ValidationFailed

Bool = NDArray[np.bool_]


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


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    params: dict[str, Param]
    build: Callable[[pd.DataFrame, dict[str, float]], tuple[Bool, Bool]]
    check: Callable[[dict[str, float]], str | None] = lambda _p: None

    def warmup(self, params: dict[str, float]) -> int:
        """Bars before the first signal can appear."""
        windows = [int(v) for k, v in params.items() if k in ("fast", "slow", "window")]
        return max(windows, default=1) + 1


def crosses_above(a: pd.Series, b: pd.Series) -> Bool:
    """True on the bars where ``a`` moves from at or below ``b`` to above it (both defined on both bars)."""
    above = (a > b).to_numpy()
    defined = (a.notna() & b.notna()).to_numpy()
    out = np.zeros(len(a), dtype=bool)
    out[1:] = above[1:] & ~above[:-1] & defined[1:] & defined[:-1]
    return out


def _ma_cross(
    average: Callable[[pd.Series, int], pd.Series],
) -> Callable[[pd.DataFrame, dict[str, float]], tuple[Bool, Bool]]:
    def build(bars: pd.DataFrame, p: dict[str, float]) -> tuple[Bool, Bool]:
        fast, slow = average(bars["close"], int(p["fast"])), average(bars["close"], int(p["slow"]))
        return crosses_above(fast, slow), crosses_above(slow, fast)

    return build


def _fast_below_slow(p: dict[str, float]) -> str | None:
    return None if p["fast"] < p["slow"] else f"fast ({p['fast']:g}) must be shorter than slow ({p['slow']:g})"


def _rsi_reversion(bars: pd.DataFrame, p: dict[str, float]) -> tuple[Bool, Bool]:
    rsi = indicators.rsi(bars["close"], int(p["window"]))
    return crosses_above(pd.Series(p["lower"], index=rsi.index), rsi), crosses_above(
        rsi, pd.Series(p["upper"], index=rsi.index)
    )


def _lower_below_upper(p: dict[str, float]) -> str | None:
    return None if p["lower"] < p["upper"] else f"lower ({p['lower']:g}) must be below upper ({p['upper']:g})"


def _bollinger_breakout(bars: pd.DataFrame, p: dict[str, float]) -> tuple[Bool, Bool]:
    bands = indicators.bollinger(bars["close"], int(p["window"]), p["k"])
    close = bars["close"]
    return crosses_above(close, bands["upper"]), crosses_above(bands["middle"], close)


def _buy_and_hold(bars: pd.DataFrame, _p: dict[str, float]) -> tuple[Bool, Bool]:
    entries = np.zeros(len(bars), dtype=bool)
    entries[:1] = True
    return entries, np.zeros(len(bars), dtype=bool)


WINDOW = Param(20, 1, 10_000)
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "sma_cross",
            "Long when the fast SMA crosses above the slow one; out (or short) on the cross back.",
            {"fast": Param(20, 1, 10_000), "slow": Param(50, 2, 10_000)},
            _ma_cross(indicators.sma),
            _fast_below_slow,
        ),
        Strategy(
            "ema_cross",
            "As sma_cross with exponential averages.",
            {"fast": Param(12, 1, 10_000), "slow": Param(26, 2, 10_000)},
            _ma_cross(indicators.ema),
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
    """The strategy and its complete parameters, or a ValidationFailed that lists what is valid."""
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise ValidationFailed(f"unknown strategy '{name}'; valid ones: {VALID_STRATEGIES}")
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
    return strategy, params


def signals(bars: pd.DataFrame, strategy: Strategy, params: dict[str, float], allow_short: bool = False) -> Signals:
    """Entries and exits; with ``allow_short`` a long exit also opens a short and a long entry closes it."""
    entries, exits = strategy.build(bars, params)
    if allow_short:
        return Signals(entries, exits, exits.copy(), entries.copy())
    none = np.zeros(len(bars), dtype=bool)
    return Signals(entries, exits, none, none.copy())
