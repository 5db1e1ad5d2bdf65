"""Backtest metrics on hand-made equity curves and trade tables with known answers."""

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import engine, kernels
from quantdesk.backtest.metrics import compute, drawdown, drawdown_episodes


def trade(pnl: float, ret: float, exit_bar: int = 1) -> list[float]:
    row = [np.nan] * kernels.TRADE_COLUMNS
    row[kernels.EXIT_BAR], row[kernels.PNL], row[kernels.RETURN_PCT] = exit_bar, pnl, ret
    return row


def result(
    equity: list[float], position: list[float], trades: list[list[float]], fees: float = 0.0
) -> engine.EngineResult:
    table = np.array(trades, dtype=float).reshape(-1, kernels.TRADE_COLUMNS)
    return engine.EngineResult(np.array(equity, dtype=float), np.array(position, dtype=float), table, fees)


INDEX = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
EQUITY = [100.0, 110.0, 99.0, 105.0, 121.0, 110.0]


def test_drawdown_and_its_episodes():
    dd = drawdown(np.array(EQUITY))
    np.testing.assert_allclose(dd, [0, 0, -0.1, 105 / 110 - 1, 0, 110 / 121 - 1])
    episodes = drawdown_episodes(dd)
    assert [(start, end) for start, end, _ in episodes] == [(2, 4), (5, 5)]
    np.testing.assert_allclose([depth for _, _, depth in episodes], [-0.1, 110 / 121 - 1])


def test_returns_risk_and_drawdown_metrics():
    close = np.array([50.0, 51, 52, 53, 54, 60])
    m = compute(INDEX, close, result(EQUITY, [0, 1, 1, 1, 0, 0], []), cash=100.0, periods_per_year=252)
    returns = np.diff(EQUITY) / np.array(EQUITY[:-1])
    assert m.return_pct == pytest.approx(10.0)
    assert m.buy_and_hold_return_pct == pytest.approx(20.0)
    assert (m.equity_final, m.equity_peak) == (110.0, 121.0)
    assert m.exposure_pct == pytest.approx(50.0)
    assert m.cagr_pct == pytest.approx((1.1 ** (252 / 6) - 1) * 100)
    assert m.volatility_ann_pct == pytest.approx(returns.std(ddof=1) * math.sqrt(252) * 100)
    assert m.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert m.sortino == pytest.approx(returns.mean() / downside * math.sqrt(252))
    assert m.max_drawdown_pct == pytest.approx(-10.0)
    assert m.avg_drawdown_pct == pytest.approx((-10.0 + (110 / 121 - 1) * 100) / 2)
    assert m.cagr_pct is not None
    assert m.calmar == pytest.approx(m.cagr_pct / 10.0)
    assert m.max_drawdown_duration == timedelta(days=3)  # peak on day 1, recovered on day 4
    assert m.duration == timedelta(days=5)


def test_trade_metrics():
    trades = [trade(50, 5.0), trade(-20, -2.0), trade(30, 3.0), trade(-10, -1.0), trade(99, 9.9, exit_bar=-1)]
    m = compute(INDEX, np.ones(6), result(EQUITY, [0] * 6, trades, fees=7.5), cash=100.0, periods_per_year=252)
    assert m.trades == 4  # the open trade is not counted
    assert m.win_rate_pct == 50.0
    assert (m.best_trade_pct, m.worst_trade_pct) == (5.0, -2.0)
    assert m.expectancy_pct == pytest.approx(1.25)
    assert m.avg_trade_pct == pytest.approx(((1.05 * 0.98 * 1.03 * 0.99) ** 0.25 - 1) * 100)
    assert m.profit_factor == pytest.approx(80 / 30)
    pnl = np.array([50, -20, 30, -10])
    assert m.sqn == pytest.approx(2 * pnl.mean() / pnl.std(ddof=1))
    assert m.commissions == 7.5


def test_metrics_without_trades_or_movement_are_null_not_nan():
    flat = [100.0] * 6
    m = compute(INDEX, np.ones(6), result(flat, [0] * 6, []), cash=100.0, periods_per_year=252)
    assert (m.trades, m.win_rate_pct, m.profit_factor, m.sqn) == (0, None, None, None)
    assert (m.sharpe, m.sortino, m.calmar) == (None, None, None)
    assert m.max_drawdown_pct == 0.0
    assert m.max_drawdown_duration == timedelta(0)
