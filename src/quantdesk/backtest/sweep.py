"""Parameter sweeps: every combination of a grid through the compiled engine, in parallel.

Every strategy's indicators are computed once per sweep (an ``Indicators`` cache shared by all its
combinations and batches). The combinations run under numba's ``prange`` in metrics-only loops built from
the engine's own fill and stop helpers (no per-bar arrays): the built-in crossovers derive their signals
bar by bar from the shared averages; every other strategy (other built-ins, rules, Python strategies)
evaluates its signals per combination and hands them to the same loop. A test requires every row to equal
the single backtest of the same parameters.
"""

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange
from numpy.typing import NDArray

from quantdesk.analytics import indicators
from quantdesk.backtest import strategies
from quantdesk.backtest.engine import Costs
from quantdesk.backtest.jit import kernels
from quantdesk.backtest.strategies import Indicators
from quantdesk.core.errors import ValidationFailed

MAX_COMBINATIONS = 100_000
SWEEP_METRICS = ("return_pct", "max_drawdown_pct", "sharpe", "trades")
# The built-ins whose signals the crossover loop derives itself, by the name their averages are cached under.
AVERAGES: dict[str, tuple[str, Callable[[pd.Series, int], pd.Series]]] = {
    "sma_cross": ("sma", indicators.sma),
    "ema_cross": ("ema", indicators.ema),
}
# Signals held in memory at once by the generic path: combinations x bars, four booleans each.
SIGNAL_CELLS_PER_CHUNK = 10_000_000


@dataclass(frozen=True)
class Sweep:
    strategy: strategies.Strategy
    combinations: list[dict[str, float]]


def parse_axis(name: str, spec: object) -> list[float]:
    """``"5:100:5"`` (start:stop:step, stop included), a list of values, or one value."""
    if isinstance(spec, str) and ":" in spec:
        try:
            start, stop, step = (float(part) for part in spec.split(":"))
        except ValueError:
            raise ValidationFailed(f"{name}='{spec}' is not start:stop:step, e.g. 5:100:5") from None
        if not all(math.isfinite(part) for part in (start, stop, step)):
            raise ValidationFailed(f"{name}='{spec}': start, stop and step must be finite numbers, e.g. 5:100:5")
        if step <= 0 or stop < start:
            raise ValidationFailed(f"{name}='{spec}': step must be positive and stop at least start")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_COMBINATIONS:
            raise ValidationFailed(f"{name}='{spec}' has {count:,} values; at most {MAX_COMBINATIONS:,}")
        return [start + i * step for i in range(count)]
    values = spec if isinstance(spec, list) else [spec]
    try:
        numbers = [float(v) for v in values]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        numbers = [math.nan]
    if not all(math.isfinite(number) for number in numbers):
        raise ValidationFailed(f"{name}: {spec!r} is not a number, a list of finite numbers or start:stop:step")
    return numbers


def build_sweep(strategy: strategies.Strategy, grid: Mapping[str, object]) -> Sweep:
    """Every valid combination of the grid (fast < slow and the like), refusing grids over the limit."""
    name = strategy.name
    unknown = sorted(set(grid) - set(strategy.params))
    if unknown:
        valid = ", ".join(strategy.params) or "none"
        raise ValidationFailed(f"unknown parameter(s) {', '.join(unknown)} for {name}; its parameters: {valid}")
    axes = {key: parse_axis(key, value) for key, value in grid.items()}
    total = math.prod(len(v) for v in axes.values())
    if total > MAX_COMBINATIONS:
        raise ValidationFailed(
            f"the grid has {total:,} combinations; the limit is {MAX_COMBINATIONS:,}: coarsen a step or narrow a range"
        )
    combinations = []
    for values in itertools.product(*axes.values()):
        try:
            params = strategies.bind(strategy, dict(zip(axes, values, strict=True)))
        except ValidationFailed:
            continue  # e.g. fast >= slow: not a combination, just outside the constraints
        combinations.append(params)
    if not combinations:
        raise ValidationFailed(
            f"no combination of the grid is valid for {name} (check constraints such as fast < slow)"
        )
    return Sweep(strategy, combinations)


@njit(cache=True)
def _cross_state(fast: float, slow: float) -> tuple[bool, bool, bool]:  # pragma: no cover - compiled
    """(both defined, fast above slow, slow above fast) at one bar."""
    defined = not (np.isnan(fast) or np.isnan(slow))
    return defined, fast > slow, slow > fast


@njit(cache=True)
def _account(
    i: int, equity: float, peak: float, worst: float, previous: float, total: float, squares: float
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """One bar's equity into the running peak and worst drawdown and the sums of returns and squares."""
    if i == 0 or equity > peak:
        peak = equity
    elif equity < peak:
        worst = min(worst, equity / peak - 1.0)
    if i > 0:
        r = 0.0 if equity == previous else equity / previous - 1.0  # flat bars: no division
        total += r
        squares += r * r
    return peak, worst, total, squares


@njit(cache=True)
def _summary(
    last: float, cash: float, worst: float, count: int, total: float, squares: float, trades: float, per_year: float
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """SWEEP_METRICS from the running figures."""
    out = np.empty(4)
    out[0] = (last / cash - 1.0) * 100.0
    out[1] = worst * 100.0
    # Plain sums, not Welford: its division per bar sits on the loop's dependency chain and costs more
    # than the rest of the bar; per-bar returns are small, so the sums lose nothing that matters.
    mean = total / count if count else 0.0
    variance = (squares - total * mean) / (count - 1) if count > 1 else 0.0
    std = math.sqrt(variance) if variance > 0 else 0.0
    out[2] = mean / std * math.sqrt(per_year) if std > 0 else np.nan
    out[3] = trades
    return out


@njit(cache=True)
def _cross_one(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    fast: NDArray[np.float64],
    slow: NDArray[np.float64],
    allow_short: bool,
    costs: NDArray[np.float64],
    periods_per_year: float,
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """One crossover combination, metrics only: the engine's own fill and stop helpers, no per-bar arrays.

    Signals are derived bar by bar as strategies.crosses_above defines them; equity feeds the running
    peak (drawdown) and sums of returns and their squares (Sharpe) instead of being stored.
    """
    n = close.size
    cash, pct, fixed, slip, sizing, value, fractional, fill_close, stop_loss, take_profit, _ = kernels.unpack_costs(
        costs
    )
    # Every trade opens on a cross, at most one per bar; np.empty leaves unused rows untouched (free).
    trades = np.empty((n + 1, kernels.TRADE_COLUMNS))
    state = np.zeros(7)
    state[kernels.CASH] = cash
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit))
    le = lx = se = sx = False
    held_cash, held = cash, 0.0  # state's cash and position, kept in registers between fills
    was_defined, was_up, was_down = False, False, False
    peak, worst, previous, total, squares = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        # Helpers are called only on the rare bars that trade: each call passes arrays, and numba pays
        # atomic reference counting per array per call, which costs more than the rest of the bar.
        if not fill_close and i > 0 and (le or lx or se or sx):
            kernels.apply_signals(
                state, trades, open_[i], i, le, lx, se, sx, slip, sizing, value, pct, fixed, fractional
            )
            held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        if stops and held != 0.0 and not (fill_close and state[kernels.ENTERED_AT] == i):
            kernels.check_exits(state, trades, i, open_[i], high[i], low[i], stop_loss, take_profit, slip, pct, fixed)
            held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        defined, up, down = _cross_state(fast[i], slow[i])
        both = defined and was_defined
        le, lx = both and up and not was_up, both and down and not was_down
        se, sx = (lx, le) if allow_short else (False, False)
        was_defined, was_up, was_down = defined, up, down
        if fill_close and (le or lx or se or sx):
            kernels.apply_signals(
                state, trades, close[i], i, le, lx, se, sx, slip, sizing, value, pct, fixed, fractional
            )
            held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        equity = held_cash + held * close[i]
        peak, worst, total, squares = _account(i, equity, peak, worst, previous, total, squares)
        previous = equity
    return _summary(previous, cash, worst, n - 1, total, squares, state[kernels.COUNT], periods_per_year)


@njit(cache=True)
def _signals_one(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    long_entries: NDArray[np.bool_],
    long_exits: NDArray[np.bool_],
    short_entries: NDArray[np.bool_],
    short_exits: NDArray[np.bool_],
    costs: NDArray[np.float64],
    periods_per_year: float,
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """One combination from its signals, metrics only: ``kernels.simulate_bars`` without per-bar arrays."""
    n = close.size
    cash, pct, fixed, slip, sizing, value, fractional, fill_close, stop_loss, take_profit, max_held = (
        kernels.unpack_costs(costs)
    )
    trades = np.empty((np.count_nonzero(long_entries) + np.count_nonzero(short_entries) + 1, kernels.TRADE_COLUMNS))
    state = np.zeros(7)
    state[kernels.CASH] = cash
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit))
    timed = not math.isnan(max_held)
    expired = False
    held_cash, held = cash, 0.0
    peak, worst, previous, total, squares = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        if not fill_close and i > 0:
            le, lx, se, sx = long_entries[i - 1], long_exits[i - 1], short_entries[i - 1], short_exits[i - 1]
            if le or lx or se or sx or expired:
                kernels.apply_signals(
                    state,
                    trades,
                    open_[i],
                    i,
                    le,
                    lx or expired,
                    se,
                    sx or expired,
                    slip,
                    sizing,
                    value,
                    pct,
                    fixed,
                    fractional,
                )
                held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        if stops and held != 0.0 and not (fill_close and state[kernels.ENTERED_AT] == i):
            kernels.check_exits(state, trades, i, open_[i], high[i], low[i], stop_loss, take_profit, slip, pct, fixed)
            held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        if fill_close:
            expired = timed and held != 0.0 and i - state[kernels.ENTERED_AT] >= max_held
            le, lx, se, sx = long_entries[i], long_exits[i], short_entries[i], short_exits[i]
            if le or lx or se or sx or expired:
                kernels.apply_signals(
                    state,
                    trades,
                    close[i],
                    i,
                    le,
                    lx or expired,
                    se,
                    sx or expired,
                    slip,
                    sizing,
                    value,
                    pct,
                    fixed,
                    fractional,
                )
                held_cash, held = state[kernels.CASH], state[kernels.POSITION]
        elif timed:
            expired = held != 0.0 and i - state[kernels.ENTERED_AT] >= max_held
        equity = held_cash + held * close[i]
        peak, worst, total, squares = _account(i, equity, peak, worst, previous, total, squares)
        previous = equity
    return _summary(previous, cash, worst, n - 1, total, squares, state[kernels.COUNT], periods_per_year)


@njit(parallel=True, cache=True)
def _signals_sweep(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    long_entries: NDArray[np.bool_],
    long_exits: NDArray[np.bool_],
    short_entries: NDArray[np.bool_],
    short_exits: NDArray[np.bool_],
    costs: NDArray[np.float64],
    periods_per_year: float,
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """Row j of each signal matrix and of ``costs`` is combination j."""
    results = np.empty((long_entries.shape[0], 4))
    for j in prange(long_entries.shape[0]):
        results[j] = _signals_one(
            open_,
            high,
            low,
            close,
            long_entries[j],
            long_exits[j],
            short_entries[j],
            short_exits[j],
            costs[j],
            periods_per_year,
        )
    return results


@njit(parallel=True, cache=True)
def _cross_sweep(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    fast: NDArray[np.float64],
    slow: NDArray[np.float64],
    pairs: NDArray[np.int64],
    allow_short: bool,
    costs: NDArray[np.float64],
    periods_per_year: float,
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    results = np.empty((pairs.shape[0], 4))
    for j in prange(pairs.shape[0]):
        results[j] = _cross_one(
            open_, high, low, close, fast[pairs[j, 0]], slow[pairs[j, 1]], allow_short, costs, periods_per_year
        )
    return results


def run_sweep(
    bars: pd.DataFrame,
    sweep: Sweep,
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    cache: Indicators | None = None,
) -> pd.DataFrame:
    """One row per combination: its parameters and SWEEP_METRICS (NaN Sharpe where it is undefined).
    ``cache`` keeps the indicators computed, for the next batch of the same bars."""
    params = pd.DataFrame(sweep.combinations)
    kept: Indicators = {} if cache is None else cache
    crossover = AVERAGES.get(sweep.strategy.name) if sweep.strategy.kind == "built-in" else None
    if crossover is not None and math.isnan(costs.max_bars_held):
        results = _sweep_crossovers(bars, params, crossover, costs, allow_short, periods_per_year, kept)
    else:
        results = _sweep_signals(bars, sweep, costs, allow_short, periods_per_year, kept)
    return pd.concat([params, pd.DataFrame(results, columns=list(SWEEP_METRICS))], axis=1)


def _sweep_crossovers(
    bars: pd.DataFrame,
    params: pd.DataFrame,
    crossover: tuple[str, Callable[[pd.Series, int], pd.Series]],
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    cache: Indicators,
) -> NDArray[np.float64]:
    name, average = crossover
    close = bars["close"].reset_index(drop=True)

    def of(window: int) -> NDArray[np.float64]:
        key = (name, "close", float(window))
        return strategies.indicator(cache, key, lambda: average(close, window)).to_numpy()

    fast_windows, fast_at = np.unique(params["fast"].astype(int), return_inverse=True)
    slow_windows, slow_at = np.unique(params["slow"].astype(int), return_inverse=True)
    fast = np.vstack([of(int(w)) for w in fast_windows])
    slow = np.vstack([of(int(w)) for w in slow_windows])
    pairs = np.column_stack([fast_at, slow_at]).astype(np.int64)
    o, h, lo, c = _prices(bars)
    return _cross_sweep(o, h, lo, c, fast, slow, pairs, allow_short, costs.vector(), float(periods_per_year))


def _prices(bars: pd.DataFrame) -> tuple[NDArray[np.float64], ...]:
    return tuple(bars[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close"))


def _sweep_signals(
    bars: pd.DataFrame,
    sweep: Sweep,
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    cache: Indicators,
) -> NDArray[np.float64]:
    """Any strategy: signals per combination (indicators through the shared cache), simulated in parallel
    in chunks that bound the memory the signal matrices take."""
    n = len(bars)
    per_chunk = max(1, min(len(sweep.combinations), SIGNAL_CELLS_PER_CHUNK // max(n, 1)))
    o, h, lo, c = _prices(bars)
    flags = np.empty((4, per_chunk, n), dtype=np.bool_)  # one buffer, refilled chunk after chunk
    vectors = np.empty((per_chunk, len(costs.vector())))
    parts = []
    for start in range(0, len(sweep.combinations), per_chunk):
        chunk = sweep.combinations[start : start + per_chunk]
        for j, params in enumerate(chunk):
            sig = strategies.signals(bars, sweep.strategy, params, allow_short, cache)
            flags[0, j], flags[1, j], flags[2, j], flags[3, j] = (
                sig.long_entries,
                sig.long_exits,
                sig.short_entries,
                sig.short_exits,
            )
            vectors[j] = strategies.run_costs(costs, sweep.strategy, params).vector()
        k = len(chunk)
        parts.append(
            _signals_sweep(
                o, h, lo, c, flags[0, :k], flags[1, :k], flags[2, :k], flags[3, :k], vectors[:k], periods_per_year
            )
        )
    return np.vstack(parts) if parts else np.empty((0, 4))
