"""The deflated Sharpe ratio (Bailey and López de Prado, 2014): its threshold against simulated trials."""

import math

import numpy as np
import pytest

from quantdesk.backtest import selection


@pytest.mark.parametrize(("trials", "within"), [(10, 0.05), (100, 0.02), (1_000, 0.02)])
def test_the_expected_maximum_matches_the_mean_maximum_of_simulated_trials(trials, within):
    # The paper's closed form approximates E[max of N zero-mean normal Sharpe ratios]; a simulation of
    # 4,000 sweeps of N trials with variance 0.5 measures it (the approximation tightens as N grows).
    rng = np.random.default_rng(7)
    simulated = rng.normal(0.0, math.sqrt(0.5), (4_000, trials)).max(axis=1).mean()
    assert selection.expected_max_sharpe(0.5, trials) == pytest.approx(simulated, rel=within)
    assert selection.expected_max_sharpe(0.5, 1) == 0.0


def test_luck_deflates_the_best_of_many_and_not_the_best_of_two():
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0005, 0.01, 2_520)  # ten years of daily returns, Sharpe about 0.8
    few = selection.deflated_sharpe(np.array([0.8, 0.1]), returns, 252)
    many = selection.deflated_sharpe(rng.normal(0, 0.6, 1_000), returns, 252)
    assert few is not None
    assert many is not None
    assert few["deflated_sharpe"] > 0.9
    assert many["deflated_sharpe"] < few["deflated_sharpe"]
    assert many["expected_max_sharpe"] > few["expected_max_sharpe"]
    assert many["best_sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))


def test_undefined_without_enough_trials_or_returns():
    assert selection.deflated_sharpe(np.array([1.0]), np.ones(10), 252) is None
    assert selection.deflated_sharpe(np.array([1.0, np.nan, 0.5]), np.array([0.01, 0.02]), 252) is None
    assert selection.deflated_sharpe(np.array([1.0, 0.5]), np.zeros(10), 252) is None
