"""Parameter sweeps: every combination of a grid through the compiled engine, in parallel.

Crossover strategies compute each distinct moving average once and share it across combinations; the
combinations run under numba's ``prange`` in a metrics-only loop built from the engine's own fill and
stop helpers (no per-bar arrays), and a test requires every row to equal the single backtest of the same
parameters. Other strategies fall back to one full simulation per combination.
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
from quantdesk.core.errors import ValidationFailed

MAX_COMBINATIONS = 100_000
SWEEP_METRICS = ("return_pct", "max_drawdown_pct", "sharpe", "trades")
AVERAGES: dict[str, Callable[[pd.Series, int], pd.Series]] = {"sma_cross": indicators.sma, "ema_cross": indicators.ema}


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


def build_sweep(name: str, grid: Mapping[str, object]) -> Sweep:
    """Every valid combination of the grid (fast < slow and the like), refusing grids over the limit."""
    strategy, _ = strategies.resolve(name, None)
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
            _, params = strategies.resolve(name, dict(zip(axes, values, strict=True)))
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
    cash, pct, fixed, slip, sizing, value, fractional, fill_close, stop_loss, take_profit = kernels.unpack_costs(costs)
    # Every trade opens on a cross, at most one per bar; np.empty leaves unused rows untouched (free).
    trades = np.empty((n + 1, kernels.TRADE_COLUMNS))
    state = np.zeros(7)
    state[kernels.CASH] = cash
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit))
    le = lx = se = sx = False
    held_cash, held = cash, 0.0  # state's cash and position, kept in registers between fills
    was_defined, was_up, was_down = False, False, False
    peak, worst, previous = 0.0, 0.0, 0.0
    count, total, squares = 0, 0.0, 0.0
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
        if i == 0 or equity > peak:
            peak = equity
        elif equity < peak:
            worst = min(worst, equity / peak - 1.0)
        if i > 0:
            r = 0.0 if equity == previous else equity / previous - 1.0  # flat bars: no division
            count += 1
            total += r
            squares += r * r
        previous = equity
    out = np.empty(4)
    out[0] = (previous / cash - 1.0) * 100.0
    out[1] = worst * 100.0
    # Plain sums, not Welford: its division per bar sits on the loop's dependency chain and costs more
    # than the rest of the bar; per-bar returns are small, so the sums lose nothing that matters.
    mean = total / count if count else 0.0
    variance = (squares - total * mean) / (count - 1) if count > 1 else 0.0
    std = math.sqrt(variance) if variance > 0 else 0.0
    out[2] = mean / std * math.sqrt(periods_per_year) if std > 0 else np.nan
    out[3] = state[kernels.COUNT]
    return out


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


# Moving averages of one sweep's bars by window: a sweep run in batches computes each window once, not
# once per batch that needs it (a 355-pair grid has 35 windows but needed them 416 times in 50 batches).
Averages = dict[int, NDArray[np.float64]]


def run_sweep(
    bars: pd.DataFrame,
    sweep: Sweep,
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    averages: Averages | None = None,
) -> pd.DataFrame:
    """One row per combination: its parameters and SWEEP_METRICS (NaN Sharpe where it is undefined).
    ``averages`` keeps the moving averages computed, for the next batch of the same bars."""
    params = pd.DataFrame(sweep.combinations)
    average = AVERAGES.get(sweep.strategy.name)
    if average is not None:
        kept = {} if averages is None else averages
        results = _sweep_crossovers(bars, params, average, costs, allow_short, periods_per_year, kept)
    else:
        results = np.array(
            [_one(bars, sweep.strategy, p, costs, allow_short, periods_per_year) for p in sweep.combinations]
        )
    return pd.concat([params, pd.DataFrame(results, columns=list(SWEEP_METRICS))], axis=1)


def _sweep_crossovers(
    bars: pd.DataFrame,
    params: pd.DataFrame,
    average: Callable[[pd.Series, int], pd.Series],
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    averages: Averages,
) -> NDArray[np.float64]:
    close = bars["close"]

    def of(window: int) -> NDArray[np.float64]:
        if window not in averages:
            averages[window] = average(close, window).to_numpy(dtype=np.float64)
        return averages[window]

    fast_windows, fast_at = np.unique(params["fast"].astype(int), return_inverse=True)
    slow_windows, slow_at = np.unique(params["slow"].astype(int), return_inverse=True)
    fast = np.vstack([of(int(w)) for w in fast_windows])
    slow = np.vstack([of(int(w)) for w in slow_windows])
    pairs = np.column_stack([fast_at, slow_at]).astype(np.int64)
    o, h, lo, c = (bars[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close"))
    return _cross_sweep(
        o,
        h,
        lo,
        c,
        fast,
        slow,
        pairs,
        allow_short,
        costs.vector(),
        float(periods_per_year),
    )


def _one(
    bars: pd.DataFrame,
    strategy: strategies.Strategy,
    params: dict[str, float],
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
) -> list[float]:
    from quantdesk.backtest.service import simulate

    outcome = simulate(bars, strategy, params, costs, allow_short, periods_per_year)
    m = outcome.metrics
    return [m.return_pct, m.max_drawdown_pct, m.sharpe if m.sharpe is not None else math.nan, float(m.trades)]
