"""The forecasting core: features, models, training, scoring, walk-forward and the trading calendar."""

from datetime import UTC, datetime

import numpy as np
import pytest

from quantdesk.core.errors import ValidationFailed
from quantdesk.forecast import evaluation, forecasters, scoring, training
from quantdesk.forecast.features import FeatureSpec, feature_matrix, last_row, training_rows
from quantdesk.forecast.future import future_times
from quantdesk.market.intervals import Interval

SPEC = FeatureSpec(lags=2, averages=(3,), volatility=(3,))


def random_walk(n: int = 400, seed: int = 1) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def test_features_are_known_at_each_close():
    close = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
    row = feature_matrix(close, SPEC)[4]
    r = np.log(close[1:] / close[:-1])
    assert row[0] == pytest.approx(r[3])  # the return into bar 4
    assert row[1] == pytest.approx(r[2])  # the one before
    assert row[2] == pytest.approx(108.9 / np.mean(close[2:5]) - 1)
    assert row[3] == pytest.approx(np.std(r[1:4], ddof=1))
    assert np.isnan(feature_matrix(close, SPEC)[2]).any()  # the volatility window is not yet full
    assert SPEC.lookback == 4
    np.testing.assert_allclose(last_row(close, SPEC)[0], row)


def test_training_rows_pair_features_with_the_next_return():
    close = random_walk(50)
    features, target = training_rows(close, SPEC)
    assert features.shape == (50 - SPEC.lookback, SPEC.width)
    assert target[0] == pytest.approx(np.log(close[SPEC.lookback] / close[SPEC.lookback - 1]))


def test_baselines():
    close = np.array([10.0, 12.0, 11.0, 16.0])
    naive, drift = forecasters.create("naive", SPEC), forecasters.create("drift", SPEC)
    naive.fit(close)
    drift.fit(close)
    np.testing.assert_array_equal(naive.predict(close, 3), [16, 16, 16])
    np.testing.assert_allclose(drift.predict(close, 3), [18, 20, 22])  # (16 - 10) / 3 per step


def test_linear_regression_learns_a_predictable_return_process():
    rng = np.random.default_rng(3)
    returns = np.zeros(3000)
    for t in range(1, returns.size):
        returns[t] = 0.6 * returns[t - 1] + rng.normal(0, 0.005)
    close = 100 * np.exp(np.cumsum(returns))
    model = forecasters.create("linear", FeatureSpec(lags=2, averages=(), volatility=()))
    model.fit(close)
    assert isinstance(model, forecasters.Regression)
    assert model.estimator.coef_[0] == pytest.approx(0.6, abs=0.05)
    rising = np.append(close, close[-1] * 1.02)  # a 2% jump: momentum says more rise next
    assert model.predict(rising, 1)[0] > rising[-1]


@pytest.mark.parametrize("kind", forecasters.KINDS)
def test_every_model_round_trips_through_storage(kind: str):
    close = random_walk(300)
    model = forecasters.create(kind, FeatureSpec())
    model.fit(close)
    again = forecasters.restore(kind, FeatureSpec(), model.state())
    np.testing.assert_array_equal(again.predict(close, 10), model.predict(close, 10))


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValidationFailed, match="valid ones: linear, ridge, gradient_boosting, naive, drift"):
        forecasters.create("prophet", SPEC)


def test_scores_by_hand():
    predicted, actual = np.array([11.0, 9.0, 12.0]), np.array([10.0, 10.0, 13.0])
    errors = scoring.errors(predicted, actual, reference=10.5, scale=2.0)
    assert errors.count == 3
    assert errors.mae == pytest.approx(1.0)
    assert errors.rmse == pytest.approx(1.0)
    assert errors.mape == pytest.approx((0.1 + 0.1 + 1 / 13) / 3 * 100)
    assert errors.mase == pytest.approx(0.5)
    # up vs down, down vs down, up vs up from 10.5
    assert errors.direction_accuracy == pytest.approx(200 / 3)
    assert scoring.errors(np.array([]), np.array([]), 1.0, 1.0).mae is None
    assert scoring.errors(np.array([5.0]), np.array([6.0]), 5.0, 1.0).direction_accuracy is None  # never moved


def test_training_reports_hold_out_errors_and_refuses_short_histories():
    close = random_walk(300)
    trained = training.train("naive", close, FeatureSpec())
    split = 300 - 60
    expected = np.mean(np.abs(close[split:] - close[split - 1 : -1]))
    assert trained.holdout.count == 60
    assert trained.holdout.mae == pytest.approx(expected)
    assert trained.holdout.mase == pytest.approx(expected / np.mean(np.abs(np.diff(close[:split]))))
    assert trained.residual_std > 0
    need = training.minimum_bars(FeatureSpec())
    with pytest.raises(ValidationFailed, match=f"needs at least {need} bars"):
        training.train("linear", close[: need - 1], FeatureSpec())


def test_intervals_widen_with_the_step():
    lower, upper = training.interval(np.full(4, 100.0), 0.01)
    widths = upper - lower
    assert np.all(np.diff(widths) > 0)
    assert upper[0] == pytest.approx(100 * np.exp(1.96 * 0.01), rel=1e-3)


def test_walk_forward_shows_every_model_next_to_naive():
    close = random_walk(600)
    result = evaluation.walk_forward(close, ["drift"], horizon=20, folds=5, spec=FeatureSpec())
    assert [fold.origin for fold in result.folds] == [499, 519, 539, 559, 579]
    assert set(result.pooled) == {"drift", "naive"}
    naive = np.concatenate([np.abs(close[o + 1 : o + 21] - close[o]) for o in range(499, 599, 20)])
    assert result.pooled["naive"].mae == pytest.approx(naive.mean())
    assert result.pooled["naive"].count == 100
    with pytest.raises(ValidationFailed, match="fewer folds or a shorter horizon"):
        evaluation.walk_forward(close, ["linear"], horizon=100, folds=6, spec=FeatureSpec())


def test_the_calendar_skips_weekends_unless_the_market_trades_every_day():
    friday = datetime(2024, 1, 5, tzinfo=UTC)
    stocks = future_times(friday, Interval.d1, 3, every_day=False)
    assert [t.day for t in stocks] == [8, 9, 10]  # Monday to Wednesday
    crypto = future_times(friday, Interval.d1, 3, every_day=True)
    assert [t.day for t in crypto] == [6, 7, 8]
    hours = future_times(datetime(2024, 1, 5, 23, tzinfo=UTC), Interval.h1, 2, every_day=False)
    assert hours == [datetime(2024, 1, 8, 0, tzinfo=UTC), datetime(2024, 1, 8, 1, tzinfo=UTC)]
    assert future_times(friday, Interval.w1, 1, every_day=False) == [datetime(2024, 1, 12, tzinfo=UTC)]
