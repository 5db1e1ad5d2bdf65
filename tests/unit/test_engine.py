"""The simulator, compiled and in plain Python: hand-computed cases for each rule, and equivalence with
the plain-Python reference on random data and parameters. Every test runs both paths."""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.backtest import engine, kernels
from quantdesk.backtest.engine import Costs, ExitReason, Sizing
from tests import reference_backtest

N = np.nan


pytestmark = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])


def run(
    compiled: bool, ohlc: Sequence[Sequence[float]], signals: Sequence[Sequence[bool]], **costs: Any
) -> engine.EngineResult:
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*ohlc, strict=True))
    le, lx, se, sx = (np.array(col, dtype=bool) for col in zip(*signals, strict=True))
    return engine.simulate(o, h, lo, c, le, lx, se, sx, Costs(**costs), compiled=compiled)


def simulate(compiled: bool, ohlc: np.ndarray, flags: np.ndarray, costs: Costs) -> engine.EngineResult:
    o, h, lo, c = ohlc.T
    le, lx, se, sx = flags.T
    return engine.simulate(o, h, lo, c, le, lx, se, sx, costs, compiled=compiled)


FLAT = [(100, 101, 99, 100)] * 5
NO = (False, False, False, False)
BUY = (True, False, False, False)
SELL = (False, True, False, False)


def test_a_signal_fills_at_the_next_open_in_whole_units(compiled):
    bars = [(100, 101, 99, 100), (110, 112, 108, 111), (120, 121, 119, 120), (130, 131, 129, 130)]
    result = run(compiled, bars, [BUY, NO, SELL, NO], cash=1000)
    trade = result.trades[0]
    assert (trade[kernels.ENTRY_BAR], trade[kernels.ENTRY_PRICE], trade[kernels.SIZE]) == (1, 110, 9)  # 1000 // 110
    assert (trade[kernels.EXIT_BAR], trade[kernels.EXIT_PRICE], trade[kernels.PNL]) == (3, 130, 180)
    assert result.equity.tolist() == [1000, 1000 - 990 + 999, 1000 - 990 + 1080, 1000 + 180]


def test_fill_at_close_and_fractional_units(compiled):
    bars = [(100, 101, 99, 100), (110, 112, 108, 110)]
    result = run(compiled, bars, [BUY, SELL], cash=1000, fill_close=True, fractional=True)
    trade = result.trades[0]
    assert (trade[kernels.ENTRY_PRICE], trade[kernels.SIZE], trade[kernels.EXIT_PRICE]) == (100, 10, 110)
    assert trade[kernels.PNL] == pytest.approx(100)


def test_commission_percent_and_fixed_and_slippage(compiled):
    bars = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100)]
    result = run(
        compiled, bars, [BUY, NO, SELL, NO], cash=10_000, commission_pct=0.1, commission_fixed=1, slippage_bps=10
    )
    trade = result.trades[0]
    assert trade[kernels.ENTRY_PRICE] == pytest.approx(100.1)  # 10 bps against the buyer
    size = math.floor((10_000 - 1) / (100.1 * 1.001))
    assert trade[kernels.SIZE] == size
    assert trade[kernels.EXIT_PRICE] == pytest.approx(99.9)
    fees = size * 100.1 * 0.001 + 1 + size * 99.9 * 0.001 + 1
    assert result.commissions == pytest.approx(fees)
    assert trade[kernels.PNL] == pytest.approx((99.9 - 100.1) * size - fees)


def test_stop_loss_inside_the_bar_and_through_a_gap(compiled):
    bars = [(100, 100, 100, 100), (100, 101, 99, 100), (99, 99, 94, 96), (96, 96, 96, 96)]
    stopped = run(compiled, bars, [BUY, NO, NO, NO], cash=1000, stop_loss_pct=5)
    assert stopped.trades[0][kernels.REASON] == ExitReason.stop_loss
    assert stopped.trades[0][kernels.EXIT_PRICE] == pytest.approx(95)  # the level, reached at 94
    gap = [(100, 100, 100, 100), (100, 101, 99, 100), (90, 92, 89, 91), (91, 91, 91, 91)]
    gapped = run(compiled, gap, [BUY, NO, NO, NO], cash=1000, stop_loss_pct=5)
    assert gapped.trades[0][kernels.EXIT_PRICE] == 90  # opened below the stop: filled at the open


def test_take_profit_and_the_rule_when_a_bar_reaches_both_levels(compiled):
    bars = [(100, 100, 100, 100), (100, 100, 100, 100), (101, 112, 101, 111), (111, 111, 111, 111)]
    profit = run(compiled, bars, [BUY, NO, NO, NO], cash=1000, take_profit_pct=10)
    assert profit.trades[0][kernels.REASON] == ExitReason.take_profit
    assert profit.trades[0][kernels.EXIT_PRICE] == pytest.approx(110)
    both = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 111, 94, 100), (100, 100, 100, 100)]
    result = run(compiled, both, [BUY, NO, NO, NO], cash=1000, take_profit_pct=10, stop_loss_pct=5)
    assert result.trades[0][kernels.REASON] == ExitReason.stop_loss


def test_an_exit_before_any_entry_is_ignored(compiled):
    """Regression for the classic crossover bug: a first cross that is a sell pairs with nothing."""
    result = run(compiled, FLAT, [SELL, BUY, NO, SELL, NO], cash=1000)
    assert len(result.trades) == 1
    assert (result.trades[0][kernels.ENTRY_BAR], result.trades[0][kernels.EXIT_BAR]) == (2, 4)


def test_an_open_position_is_marked_to_market_and_reported_open(compiled):
    bars = [(100, 100, 100, 100), (100, 100, 100, 100), (120, 120, 120, 120)]
    result = run(compiled, bars, [BUY, NO, NO], cash=1000)
    assert result.equity[-1] == 1200
    assert result.trades[0][kernels.EXIT_BAR] == -1
    assert result.trades[0][kernels.REASON] == ExitReason.open
    assert result.trades[0][kernels.PNL] == 200


def test_short_then_reverse_to_long(compiled):
    bars = [(100, 100, 100, 100), (100, 100, 100, 100), (90, 90, 90, 90), (90, 90, 90, 90)]
    short_then_long = [(False, False, True, False), (True, False, False, True), NO, NO]
    result = run(compiled, bars, short_then_long, cash=1000)
    short, long = result.trades
    assert (short[kernels.DIRECTION], short[kernels.ENTRY_PRICE], short[kernels.EXIT_PRICE]) == (-1, 100, 90)
    assert short[kernels.PNL] == 100  # 10 units shorted at 100, bought back at 90
    assert (long[kernels.DIRECTION], long[kernels.ENTRY_BAR]) == (1, 2)


@pytest.mark.parametrize(
    ("sizing", "value", "size"),
    [(Sizing.all_in, 1, 10), (Sizing.fraction, 0.5, 5), (Sizing.quantity, 3, 3), (Sizing.quantity, 50, 10)],
)
def test_sizing(compiled, sizing, value, size):
    result = run(compiled, FLAT, [BUY, NO, NO, NO, NO], cash=1000, sizing=sizing, sizing_value=value)
    assert result.trades[0][kernels.SIZE] == size


prices = st.lists(st.floats(min_value=-0.08, max_value=0.08, allow_nan=False), min_size=2, max_size=120)


@st.composite
def scenarios(draw):
    moves = draw(prices)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100 * np.exp(np.cumsum(moves))
    open_ = close * np.exp(rng.normal(0, 0.01, close.size))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, close.size))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, close.size))
    shorts = draw(st.booleans())
    flags = rng.random((close.size, 4)) < draw(st.floats(0.02, 0.4))
    if not shorts:
        flags[:, 2:] = False
    costs = Costs(
        cash=draw(st.floats(100, 1e6)),
        commission_pct=draw(st.sampled_from([0.0, 0.05, 0.25])),
        commission_fixed=draw(st.sampled_from([0.0, 1.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0, 25.0])),
        sizing=draw(st.sampled_from(list(Sizing))),
        sizing_value=draw(st.sampled_from([0.5, 1.0, 3.0])),
        fractional=draw(st.booleans()),
        fill_close=draw(st.booleans()),
        stop_loss_pct=draw(st.sampled_from([math.nan, 2.0, 5.0])),
        take_profit_pct=draw(st.sampled_from([math.nan, 3.0, 8.0])),
        max_bars_held=draw(st.sampled_from([math.nan, math.nan, 0.0, 1.0, 4.0])),
    )
    return np.column_stack([open_, high, low, close]), flags, costs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_engine_equals_the_plain_python_reference(compiled, scenario):
    ohlc, flags, costs = scenario
    result = simulate(compiled, ohlc, flags, costs)
    equity, trades, fees = reference_backtest.run([tuple(r) for r in ohlc], [tuple(map(bool, f)) for f in flags], costs)
    np.testing.assert_allclose(result.equity, equity, rtol=1e-9)
    assert len(result.trades) == len(trades)
    for row, trade in zip(result.trades, trades, strict=True):
        assert (row[kernels.ENTRY_BAR], row[kernels.EXIT_BAR], row[kernels.DIRECTION]) == (
            trade.entry_bar,
            trade.exit_bar,
            trade.direction,
        )
        assert row[kernels.SIZE] == pytest.approx(trade.size)
        assert row[kernels.ENTRY_PRICE] == pytest.approx(trade.entry_price)
        assert row[kernels.PNL] == pytest.approx(trade.pnl, rel=1e-9, abs=1e-9)
        assert row[kernels.REASON] == trade.reason
        if trade.exit_bar >= 0:
            assert row[kernels.EXIT_PRICE] == pytest.approx(trade.exit_price)
    assert result.commissions == pytest.approx(fees)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_equity_is_cash_plus_positions_and_long_only_cash_never_goes_negative(compiled, scenario):
    ohlc, flags, costs = scenario
    flags[:, 2:] = False
    result = simulate(compiled, ohlc, flags, costs)
    cash = result.equity - result.position * ohlc[:, 3]
    assert np.all(cash >= -1e-6 * costs.cash)
    every_trade = np.nansum(result.trades[:, kernels.PNL])  # the open one marked to market
    assert result.equity[-1] == pytest.approx(costs.cash + every_trade, rel=1e-9, abs=1e-6)
