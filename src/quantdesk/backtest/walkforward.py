"""Walk-forward evaluation: choose parameters in sample, trade them out of sample, fold after fold.

Windows are counted in bars. Fold k trains on ``train`` bars (rolling: the ``train`` bars before its test
window; anchored: every bar from the first) and tests on the next ``test`` bars; folds advance by ``step``
bars (``test`` by default; a smaller step would make test windows overlap and is refused). In each fold:

1. the in-sample sweep runs the grid over the training bars and picks the best row by ``metric``;
2. the out-of-sample run computes its signals over the training and test bars (so indicators are warm
   when the test window opens) but trades only in the test window, starts with the equity the previous
   fold ended with, and closes any position at the window's end (an exit decided at the last bar that can
   still fill inside the window).

The stitched out-of-sample equity curve joins the test windows; its metrics are those of a backtest
(docs/metrics.md). Walk-forward efficiency is the out-of-sample annualised return over the mean in-sample
annualised return of the chosen rows (none when the latter is 0 or less); stability is the share of folds
that chose the most frequent parameters.
"""

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.backtest import engine, kernels, metrics, strategies, sweep
from quantdesk.backtest.engine import Costs
from quantdesk.core.errors import ValidationFailed

Mode = Literal["rolling", "anchored"]
FoldMetrics = dict[str, float | None]


@dataclass(frozen=True)
class Plan:
    train: int
    test: int
    step: int
    mode: Mode
    metric: str


@dataclass(frozen=True)
class Fold:
    """Bar positions: training [train_start, test_start), testing [test_start, test_end)."""

    train_start: int
    test_start: int
    test_end: int


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    params: dict[str, float]
    in_sample: FoldMetrics
    out_of_sample: FoldMetrics
    result: engine.EngineResult  # the out-of-sample run over the test window only


@dataclass(frozen=True)
class Outcome:
    folds: list[FoldResult]
    bars_index: pd.DatetimeIndex  # every bar of the range (the folds' positions point into it)
    index: pd.DatetimeIndex  # the stitched test windows
    result: engine.EngineResult  # stitched: equity, position, trades (bar numbers in the stitched index)
    metrics: metrics.Metrics
    efficiency: float | None
    stability: float
    chosen: dict[str, float]  # the most frequent parameters


def make_folds(bars: int, plan: Plan) -> list[Fold]:
    """Every fold whose training and test windows fit in the bars."""
    if plan.step < plan.test:
        raise ValidationFailed(
            f"step ({plan.step}) must be at least test ({plan.test}) bars, so that test windows do not overlap"
        )
    folds = []
    test_start = plan.train
    while test_start + plan.test <= bars:
        start = 0 if plan.mode == "anchored" else test_start - plan.train
        folds.append(Fold(start, test_start, test_start + plan.test))
        test_start += plan.step
    if not folds:
        raise ValidationFailed(
            f"train ({plan.train}) + test ({plan.test}) bars do not fit in the range's {bars} bars: "
            "widen the range or shorten the windows"
        )
    return folds


def run(
    bars: pd.DataFrame,
    grid: sweep.Sweep,
    plan: Plan,
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Every fold in order (each starts with the equity the last ended with), then the stitched result."""
    folds = make_folds(len(bars), plan)
    done: list[FoldResult] = []
    cash = costs.cash
    for number, fold in enumerate(folds):
        chosen, in_sample = choose(
            bars.iloc[fold.train_start : fold.test_start], grid, plan, costs, allow_short, periods_per_year
        )
        tested = out_of_sample(bars, fold, grid.strategy, chosen, costs, cash, allow_short, periods_per_year)
        done.append(FoldResult(fold, chosen, in_sample, window_metrics(tested, cash, periods_per_year), tested))
        cash = float(tested.equity[-1])
        if progress is not None:
            progress(number + 1, len(folds))
    return stitch(bars, done, costs.cash, periods_per_year)


def choose(
    training: pd.DataFrame, grid: sweep.Sweep, plan: Plan, costs: Costs, allow_short: bool, periods_per_year: float
) -> tuple[dict[str, float], FoldMetrics]:
    """The best combination of the grid on the training bars by the plan's metric (undefined values last)."""
    table = sweep.run_sweep(training, grid, costs, allow_short, periods_per_year)
    table = table.sort_values(plan.metric, ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    best = table.iloc[0]
    params = {key: float(best[key]) for key in grid.strategy.params}
    return params, {key: _finite(best[key]) for key in sweep.SWEEP_METRICS}


def out_of_sample(
    bars: pd.DataFrame,
    fold: Fold,
    strategy: strategies.Strategy,
    params: dict[str, float],
    costs: Costs,
    cash: float,
    allow_short: bool,
    periods_per_year: float,
) -> engine.EngineResult:
    """The chosen parameters traded in the test window, their signals computed from the training start."""
    seen = bars.iloc[fold.train_start : fold.test_end]
    warm = fold.test_start - fold.train_start
    sig = strategies.signals(seen, strategy, params, allow_short)
    flags = [
        np.array(a[warm:], dtype=bool) for a in (sig.long_entries, sig.long_exits, sig.short_entries, sig.short_exits)
    ]
    last = len(flags[0]) - (1 if costs.fill_close else 2)  # the last decision that still fills in the window
    if last >= 0:
        for entries in (flags[0], flags[2]):
            entries[last:] = False
        flags[1][last] = flags[3][last] = True
    window = seen.iloc[warm:]
    run_costs = strategies.run_costs(replace(costs, cash=cash), strategy, params)
    o, h, lo, c = (window[column].to_numpy(dtype=np.float64) for column in ("open", "high", "low", "close"))
    return engine.simulate(o, h, lo, c, flags[0], flags[1], flags[2], flags[3], run_costs)


def window_metrics(result: engine.EngineResult, cash: float, periods_per_year: float) -> FoldMetrics:
    """The sweep's four metrics, over one test window."""
    equity = result.equity
    returns = np.diff(equity) / equity[:-1]
    std = returns.std(ddof=1) if returns.size > 1 else 0.0
    return {
        "return_pct": float((equity[-1] / cash - 1.0) * 100.0),
        "max_drawdown_pct": float(metrics.drawdown(equity).min() * 100.0),
        "sharpe": float(returns.mean() / std * math.sqrt(periods_per_year)) if std > 0 else None,
        "trades": float(result.trades.shape[0]),
    }


def stitch(bars: pd.DataFrame, folds: list[FoldResult], cash: float, periods_per_year: float) -> Outcome:
    positions = np.concatenate([np.arange(f.fold.test_start, f.fold.test_end) for f in folds])
    index = pd.DatetimeIndex(bars.index[positions])
    tables, at = [], 0
    for f in folds:
        trades = f.result.trades.copy()
        trades[:, kernels.ENTRY_BAR] += at
        closed = trades[:, kernels.EXIT_BAR] >= 0
        trades[closed, kernels.EXIT_BAR] += at
        tables.append(trades)
        at += f.fold.test_end - f.fold.test_start
    result = engine.EngineResult(
        np.concatenate([f.result.equity for f in folds]),
        np.concatenate([f.result.position for f in folds]),
        np.vstack(tables),
        sum(f.result.commissions for f in folds),
    )
    close = bars["close"].to_numpy(dtype=np.float64)[positions]
    stitched = metrics.compute(index, close, result, cash, periods_per_year)
    counts = Counter(tuple(sorted(f.params.items())) for f in folds)
    common, times = counts.most_common(1)[0]
    return Outcome(
        folds,
        pd.DatetimeIndex(bars.index),
        index,
        result,
        stitched,
        efficiency(folds, stitched, periods_per_year),
        times / len(folds),
        dict(common),
    )


def efficiency(folds: list[FoldResult], stitched: metrics.Metrics, periods_per_year: float) -> float | None:
    """Out-of-sample annualised return over the mean in-sample annualised return of the chosen rows."""
    annual = []
    for f in folds:
        growth = 1.0 + (f.in_sample["return_pct"] or 0.0) / 100.0
        years = (f.fold.test_start - f.fold.train_start) / periods_per_year
        annual.append((growth ** (1.0 / years) - 1.0) * 100.0 if growth > 0 and years > 0 else -100.0)
    in_sample = float(np.mean(annual))
    if in_sample <= 0 or stitched.cagr_pct is None:
        return None
    return stitched.cagr_pct / in_sample


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
