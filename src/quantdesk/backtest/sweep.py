"""Parameter sweeps: every combination of a grid through the compiled engine, in parallel.

Crossover strategies compute each distinct moving average once and share it across combinations; the
combinations run under numba's ``prange`` and call the very simulator single backtests use, so a
sweep's row and the backtest of the same parameters agree exactly. Other strategies fall back to one
simulation per combination.
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
from quantdesk.backtest import engine, strategies
from quantdesk.backtest.engine import Costs
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
        if step <= 0 or stop < start:
            raise ValidationFailed(f"{name}='{spec}': step must be positive and stop at least start")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_COMBINATIONS:
            raise ValidationFailed(f"{name}='{spec}' has {count:,} values; at most {MAX_COMBINATIONS:,}")
        return [start + i * step for i in range(count)]
    values = spec if isinstance(spec, list) else [spec]
    try:
        return [float(v) for v in values]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name}: {spec!r} is not a number, a list of numbers or start:stop:step") from None


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
def _crosses_above(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:  # pragma: no cover - compiled
    out = np.zeros(a.size, dtype=np.bool_)
    for i in range(1, a.size):
        defined = not (np.isnan(a[i]) or np.isnan(b[i]) or np.isnan(a[i - 1]) or np.isnan(b[i - 1]))
        out[i] = defined and a[i] > b[i] and not a[i - 1] > b[i - 1]
    return out


@njit(cache=True)
def _summary(
    equity: NDArray[np.float64], trades: NDArray[np.float64], cash: float, periods_per_year: float
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """return_pct, max_drawdown_pct, sharpe (NaN when undefined) and closed trades, as metrics.compute defines them."""
    out = np.empty(4)
    out[0] = (equity[-1] / cash - 1.0) * 100.0
    peak, worst = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1.0)
    out[1] = worst * 100.0
    returns = equity[1:] / equity[:-1] - 1.0
    std = returns.std() * math.sqrt(returns.size / (returns.size - 1)) if returns.size > 1 else 0.0
    out[2] = returns.mean() / std * math.sqrt(periods_per_year) if std > 0 else np.nan
    out[3] = np.count_nonzero(trades[:, engine.EXIT_BAR] >= 0)
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
    cash: float,
    commission_pct: float,
    fixed: float,
    slippage_bps: float,
    sizing: int,
    value: float,
    fractional: bool,
    fill_close: bool,
    stop_loss: float,
    take_profit: float,
    periods_per_year: float,
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    results = np.empty((pairs.shape[0], 4))
    none = np.zeros(close.size, dtype=np.bool_)
    for j in prange(pairs.shape[0]):
        f, s = fast[pairs[j, 0]], slow[pairs[j, 1]]
        entries, exits = _crosses_above(f, s), _crosses_above(s, f)
        short_entries = exits if allow_short else none
        short_exits = entries if allow_short else none
        equity, _held, trades, _fees = engine._simulate(
            open_,
            high,
            low,
            close,
            entries,
            exits,
            short_entries,
            short_exits,
            cash,
            commission_pct,
            fixed,
            slippage_bps,
            sizing,
            value,
            fractional,
            fill_close,
            stop_loss,
            take_profit,
        )
        results[j] = _summary(equity, trades, cash, periods_per_year)
    return results


def run_sweep(
    bars: pd.DataFrame, sweep: Sweep, costs: Costs, allow_short: bool, periods_per_year: float
) -> pd.DataFrame:
    """One row per combination: its parameters and SWEEP_METRICS (NaN Sharpe where it is undefined)."""
    params = pd.DataFrame(sweep.combinations)
    average = AVERAGES.get(sweep.strategy.name)
    if average is not None:
        results = _sweep_crossovers(bars, params, average, costs, allow_short, periods_per_year)
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
) -> NDArray[np.float64]:
    close = bars["close"]
    fast_windows, fast_at = np.unique(params["fast"].astype(int), return_inverse=True)
    slow_windows, slow_at = np.unique(params["slow"].astype(int), return_inverse=True)
    fast = np.vstack([average(close, int(w)).to_numpy() for w in fast_windows])
    slow = np.vstack([average(close, int(w)).to_numpy() for w in slow_windows])
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
        float(costs.cash),
        float(costs.commission_pct),
        float(costs.commission_fixed),
        float(costs.slippage_bps),
        int(costs.sizing),
        float(costs.sizing_value),
        bool(costs.fractional),
        bool(costs.fill_close),
        float(costs.stop_loss_pct),
        float(costs.take_profit_pct),
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
