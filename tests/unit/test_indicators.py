"""Each indicator against an independent reference: TA-Lib on random data, and a published example."""

import numpy as np
import pandas as pd
import pytest

from quantdesk.analytics import indicators
from tests.factories import make_bars

talib = pytest.importorskip("talib")

# The 14-period RSI worked example published by StockCharts (ChartSchool, "Relative Strength Index").
# Its table rounds averages to two decimals at each step, so agreement is to about 0.1.
STOCKCHARTS_CLOSES = [
    44.34,
    44.09,
    44.15,
    43.61,
    44.33,
    44.83,
    45.10,
    45.42,
    45.84,
    46.08,
    45.89,
    46.03,
    45.61,
    46.28,
    46.28,
    46.00,
    46.03,
    46.41,
    46.22,
    45.64,
    46.21,
    46.25,
    45.71,
    46.45,
    45.78,
    45.35,
    44.03,
    44.18,
    44.22,
    44.57,
    43.42,
    42.66,
    43.13,
]
STOCKCHARTS_RSI = [
    70.53,
    66.32,
    66.55,
    69.41,
    66.36,
    57.97,
    62.93,
    63.26,
    56.06,
    62.38,
    54.71,
    50.42,
    39.99,
    41.46,
    41.87,
    45.46,
    37.30,
    33.08,
    37.77,
]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars(2_000, seed=11).to_frame()


def close_enough(ours: pd.Series, reference: np.ndarray, skip: int = 0) -> None:
    """Same warm-up (NaN at the same bars), same values after it."""
    ours_values = ours.to_numpy()
    np.testing.assert_array_equal(np.isnan(ours_values), np.isnan(reference))
    np.testing.assert_allclose(ours_values[skip:], reference[skip:], rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("window", [5, 20, 200])
def test_sma_matches_talib(bars, window):
    close_enough(indicators.sma(bars["close"], window), talib.SMA(bars["close"].to_numpy(), window))


@pytest.mark.parametrize("window", [5, 20, 50])
def test_ema_matches_talib(bars, window):
    close_enough(indicators.ema(bars["close"], window), talib.EMA(bars["close"].to_numpy(), window))


@pytest.mark.parametrize("window", [2, 14, 30])
def test_rsi_matches_talib(bars, window):
    close_enough(indicators.rsi(bars["close"], window), talib.RSI(bars["close"].to_numpy(), window))


def test_rsi_matches_the_published_worked_example():
    rsi = indicators.rsi(pd.Series(STOCKCHARTS_CLOSES), 14).dropna()
    np.testing.assert_allclose(rsi.to_numpy(), STOCKCHARTS_RSI, atol=0.1)


def test_macd_matches_talib_once_its_different_seeding_has_decayed(bars):
    ours = indicators.macd(bars["close"], 12, 26, 9)
    line, signal, hist = talib.MACD(bars["close"].to_numpy(), 12, 26, 9)
    # TA-Lib seeds the fast EMA later than a plain EMA does; the difference fades geometrically.
    for column, reference in zip(("line", "signal", "hist"), (line, signal, hist), strict=True):
        np.testing.assert_allclose(ours[column].to_numpy()[300:], reference[300:], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("window", "k"), [(20, 2.0), (10, 1.5)])
def test_bollinger_matches_talib(bars, window, k):
    ours = indicators.bollinger(bars["close"], window, k)
    upper, middle, lower = talib.BBANDS(bars["close"].to_numpy(), window, k, k, 0)
    for column, reference in zip(("upper", "middle", "lower"), (upper, middle, lower), strict=True):
        close_enough(ours[column], reference)


@pytest.mark.parametrize("window", [1, 14, 30])
def test_atr_matches_talib(bars, window):
    ours = indicators.atr(bars["high"], bars["low"], bars["close"], window)
    reference = talib.ATR(bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(), window)
    close_enough(ours, reference)


def test_rsi_of_a_series_that_only_rises_is_100():
    assert indicators.rsi(pd.Series(np.arange(1.0, 40.0)), 14).iloc[-1] == 100.0


def test_indicators_of_too_short_a_series_are_all_nan():
    short = pd.Series([1.0, 2.0, 3.0])
    assert indicators.ema(short, 5).isna().all()
    assert indicators.rsi(short, 14).isna().all()
