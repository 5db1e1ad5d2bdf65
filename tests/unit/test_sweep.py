"""Sweeps: the grid, its limits, and rows equal to single backtests of the same parameters."""

import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import rule_strategy, sweep
from quantdesk.backtest.engine import Costs
from quantdesk.backtest.service import simulate
from quantdesk.backtest.strategies import STRATEGIES, Strategy
from quantdesk.core.errors import ValidationFailed
from tests.factories import make_bars

BARS = make_bars(1_500, seed=8).to_frame()
# A rule strategy with what built-ins lack: its own short rules, a holding time and a default stop-loss.
DIP = rule_strategy.compile_document(
    {
        "name": "dip",
        "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
        "entry": "crosses_below(rsi(close, n), lo)",
        "exit": "crosses_above(rsi(close, n), 70) or bars_held >= n",
        "short_entry": "crosses_above(rsi(close, n), 100 - lo)",
        "short_exit": "close < lowest(shift(low, 1), n)",
        "stop_loss_pct": 4,
    }
)


def strategy(name: str) -> Strategy:
    return DIP if name == "dip" else STRATEGIES[name]


def test_axes_from_ranges_lists_and_single_values():
    assert sweep.parse_axis("fast", "5:20:5") == [5, 10, 15, 20]
    assert sweep.parse_axis("fast", [3, 7]) == [3, 7]
    assert sweep.parse_axis("k", 2) == [2]


def test_the_grid_keeps_only_valid_combinations():
    grid = sweep.build_sweep(STRATEGIES["sma_cross"], {"fast": "5:100:5", "slow": "20:400:20"})
    assert len(grid.combinations) == 355  # the grid: fast < slow
    assert all(c["fast"] < c["slow"] for c in grid.combinations)


@pytest.mark.parametrize(
    ("name", "grid", "message"),
    [
        (
            "sma_cross",
            {"fast": "1:1000:1", "slow": "2:1001:1"},
            "the grid has 1,000,000 combinations; the limit is 100,000",
        ),
        ("sma_cross", {"fast": "10:5:1"}, "step must be positive and stop at least start"),
        ("sma_cross", {"fast": "a:b:c"}, "is not start:stop:step"),
        ("sma_cross", {"fast": "0:inf:1", "slow": [50]}, "must be finite numbers"),
        ("sma_cross", {"fast": "nan:1:1", "slow": [50]}, "must be finite numbers"),
        ("sma_cross", {"fast": "1:10:nan", "slow": [50]}, "must be finite numbers"),
        ("sma_cross", {"fast": ["nan"], "slow": [50]}, "a list of finite numbers"),
        ("sma_cross", {"fast": [5], "slow": "inf"}, "a list of finite numbers"),
        ("sma_cross", {"fast": [50], "slow": [10]}, "no combination of the grid is valid"),
        ("sma_cross", {"window": [5]}, "unknown parameter(s) window"),
    ],
)
def test_bad_grids(name, grid, message):
    with pytest.raises(ValidationFailed) as caught:
        sweep.build_sweep(STRATEGIES[name], grid)
    assert message in caught.value.detail


@pytest.mark.parametrize(
    ("name", "grid", "costs", "allow_short"),
    [
        ("sma_cross", {"fast": "5:25:10", "slow": "30:90:30"}, Costs(commission_pct=0.1), False),
        (
            "ema_cross",
            {"fast": [3, 8], "slow": [21, 55]},
            Costs(slippage_bps=5, stop_loss_pct=3, fractional=True),
            True,
        ),
        ("rsi_reversion", {"window": [7, 14], "lower": [25, 30]}, Costs(fill_close=True), False),
        ("bollinger_breakout", {"window": [10, 20], "k": [1.5, 2]}, Costs(take_profit_pct=4), True),
        ("buy_and_hold", {}, Costs(), False),
        ("dip", {"n": [5, 14], "lo": [20, 35]}, Costs(), True),
        ("dip", {"n": [3, 9]}, Costs(fill_close=True, stop_loss_pct=2), True),
    ],
)
def test_every_row_equals_the_backtest_of_its_parameters(name, grid, costs, allow_short):
    plan = sweep.build_sweep(strategy(name), grid)
    table = sweep.run_sweep(BARS, plan, costs, allow_short, periods_per_year=252)
    assert len(table) == len(plan.combinations)
    for row, params in zip(table.itertuples(index=False), plan.combinations, strict=True):
        single = simulate(BARS, plan.strategy, params, costs, allow_short, 252).metrics
        assert row.return_pct == pytest.approx(single.return_pct, rel=1e-9, abs=1e-9)
        assert row.max_drawdown_pct == pytest.approx(single.max_drawdown_pct, rel=1e-9, abs=1e-9)
        if single.sharpe is None:
            assert math.isnan(float(row.sharpe))  # type: ignore[arg-type]
        else:
            assert row.sharpe == pytest.approx(single.sharpe, rel=1e-9)
        assert row.trades == single.trades
    assert np.isfinite(table["return_pct"]).all()


def test_a_sweep_in_batches_computes_each_moving_average_once_and_ranks_as_one_run(
    monkeypatch: pytest.MonkeyPatch,
):
    from quantdesk.backtest import sweeps
    from quantdesk.backtest.schemas import SweepCreate

    computed: list[int] = []
    key, sma = sweep.AVERAGES["sma_cross"]

    def counted(close: pd.Series, window: int) -> pd.Series:
        computed.append(window)
        return sma(close, window)

    monkeypatch.setitem(sweep.AVERAGES, "sma_cross", (key, counted))
    body = SweepCreate(symbol="ACME", strategy="sma_cross", grid={"fast": "5:100:5", "slow": "20:400:20"})
    plan = sweep.build_sweep(STRATEGIES[body.strategy], body.grid)
    batched = sweeps.run_in_batches(BARS, plan, body, 252.0)
    windows = {int(p["fast"]) for p in plan.combinations} | {int(p["slow"]) for p in plan.combinations}
    assert sorted(computed) == sorted(windows)  # 35 windows, each once, over the 50 batches
    whole = sweeps.rank(sweep.run_sweep(BARS, plan, Costs(), False, 252.0), body.rank_by)
    assert batched.equals(whole)
