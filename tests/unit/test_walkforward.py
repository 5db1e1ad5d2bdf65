"""Walk-forward: the folds' windows, each fold against a sweep and a backtest run by hand on the same
windows (the out-of-sample one by the plain-Python reference), and the stitched figures."""

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from quantdesk.backtest import kernels, metrics, strategies, sweep, walkforward
from quantdesk.backtest.engine import Costs
from quantdesk.core.errors import ValidationFailed
from tests import reference_backtest
from tests.factories import make_bars

BARS = make_bars(1_200, seed=21).to_frame()
GRID = sweep.build_sweep(strategies.STRATEGIES["sma_cross"], {"fast": [5, 10, 20], "slow": [30, 60]})


def test_rolling_and_anchored_windows():
    rolling = walkforward.make_folds(1_000, walkforward.Plan(400, 200, 200, "rolling", "sharpe"))
    assert [(f.train_start, f.test_start, f.test_end) for f in rolling] == [
        (0, 400, 600),
        (200, 600, 800),
        (400, 800, 1000),
    ]
    anchored = walkforward.make_folds(1_000, walkforward.Plan(400, 150, 250, "anchored", "sharpe"))
    assert [(f.train_start, f.test_start, f.test_end) for f in anchored] == [
        (0, 400, 550),
        (0, 650, 800),
        (0, 900, 1050),
    ][:2]
    with pytest.raises(ValidationFailed, match="must be at least test"):
        walkforward.make_folds(1_000, walkforward.Plan(400, 200, 100, "rolling", "sharpe"))
    with pytest.raises(ValidationFailed, match="do not fit"):
        walkforward.make_folds(500, walkforward.Plan(400, 200, 200, "rolling", "sharpe"))


@pytest.mark.parametrize(
    ("costs", "allow_short", "mode"),
    [
        (Costs(commission_pct=0.1), False, "rolling"),
        (Costs(fill_close=True, slippage_bps=5, fractional=True), True, "anchored"),
    ],
)
def test_each_fold_equals_a_sweep_and_a_reference_backtest_run_by_hand(costs, allow_short, mode):
    plan = walkforward.Plan(500, 200, 200, mode, "return_pct")
    outcome = walkforward.run(BARS, GRID, plan, costs, allow_short, 252.0)
    assert len(outcome.folds) == 3
    cash = costs.cash
    for fold in outcome.folds:
        window = fold.fold
        # In sample: the sweep over the training bars, best return first.
        training = BARS.iloc[window.train_start : window.test_start]
        table = sweep.run_sweep(training, GRID, costs, allow_short, 252.0)
        best = table.sort_values("return_pct", ascending=False, kind="stable").iloc[0]
        assert fold.params == {"fast": best["fast"], "slow": best["slow"]}
        assert fold.in_sample["return_pct"] == pytest.approx(best["return_pct"])
        # Out of sample: signals from the training start, trades only in the test window, closed at its end.
        seen = BARS.iloc[window.train_start : window.test_end]
        sig = strategies.signals(seen, GRID.strategy, fold.params, allow_short)
        warm = window.test_start - window.train_start
        flags = np.column_stack([sig.long_entries, sig.long_exits, sig.short_entries, sig.short_exits])[warm:]
        last = len(flags) - (1 if costs.fill_close else 2)
        flags[last:, 0] = flags[last:, 2] = False
        flags[last, 1] = flags[last, 3] = True
        test = seen.iloc[warm:]
        ohlc: list[tuple[float, ...]] = list(zip(test["open"], test["high"], test["low"], test["close"], strict=True))
        equity, trades, _ = reference_backtest.run(
            ohlc, [tuple(map(bool, row)) for row in flags], replace(costs, cash=cash)
        )
        np.testing.assert_allclose(fold.result.equity, equity, rtol=1e-9)
        assert [t.exit_bar for t in trades] == fold.result.trades[:, kernels.EXIT_BAR].astype(int).tolist()
        assert all(t.exit_bar >= 0 for t in trades)  # every position closed inside the window
        assert fold.out_of_sample["return_pct"] == pytest.approx((equity[-1] / cash - 1) * 100)
        cash = equity[-1]
    assert outcome.metrics.equity_final == pytest.approx(cash)


def test_the_stitched_curve_efficiency_and_stability():
    plan = walkforward.Plan(400, 200, 200, "rolling", "sharpe")
    outcome = walkforward.run(BARS, GRID, plan, Costs(), False, 252.0)
    assert len(outcome.index) == len(outcome.result.equity) == 200 * len(outcome.folds)
    assert outcome.index.is_monotonic_increasing
    counts = Counter(tuple(sorted(f.params.items())) for f in outcome.folds)
    assert outcome.stability == counts.most_common(1)[0][1] / len(outcome.folds)
    expected = metrics.compute(outcome.index, BARS["close"].to_numpy()[400:], outcome.result, 10_000.0, 252.0)
    assert outcome.metrics == expected
    returns = [f.in_sample["return_pct"] or 0.0 for f in outcome.folds]
    in_sample = np.mean([((1 + r / 100) ** (252 / 400) - 1) * 100 for r in returns])
    if in_sample > 0 and outcome.metrics.cagr_pct is not None:
        assert outcome.efficiency == pytest.approx(outcome.metrics.cagr_pct / in_sample)
    else:
        assert outcome.efficiency is None
    assert not math.isnan(outcome.stability)
