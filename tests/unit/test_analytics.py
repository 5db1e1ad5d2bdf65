"""Returns, rolling statistics, resampling, summaries and the enriched table, on hand-made frames."""

import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.analytics import series
from quantdesk.analytics.enriched import EnrichOptions, check_windows, enrich, parse_indicators
from quantdesk.analytics.periods import DEFAULT_CALENDARS, periods_per_year
from quantdesk.analytics.resample import Frequency, parse_frequency, resample
from quantdesk.analytics.stats import summarize
from quantdesk.core.errors import ValidationFailed
from quantdesk.market.intervals import Interval

CLOSE = pd.Series([100.0, 110.0, 99.0, 108.9], index=pd.date_range("2024-01-01", periods=4, tz="UTC"))


def frame(closes: list[float], start: str = "2024-01-01", freq: str = "1D") -> pd.DataFrame:
    index = pd.date_range(start, periods=len(closes), freq=freq, tz="UTC")
    close = pd.Series(closes, index=index)
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 10.0})


def test_simple_log_and_cumulative_returns():
    assert series.simple_returns(CLOSE).round(6).tolist()[1:] == [0.1, -0.1, 0.1]
    assert series.log_returns(CLOSE).iloc[1] == pytest.approx(math.log(1.1))
    assert series.cumulative_returns(CLOSE).round(6).tolist() == [0.0, 0.1, -0.01, 0.089]


def test_normalise_and_drawdown():
    assert series.normalize(CLOSE).round(6).tolist() == [100.0, 110.0, 99.0, 108.9]
    assert series.normalize(CLOSE, 1).iloc[1] == pytest.approx(1.1)
    assert series.drawdown(CLOSE).round(6).tolist() == [0.0, 0.0, -0.1, -0.01]


def test_rolling_statistics_fill_only_full_windows():
    assert series.rolling(CLOSE, 2, "mean").tolist()[1:] == [105.0, 104.5, 103.95]
    assert series.rolling(CLOSE, 2, "min").tolist()[1:] == [100.0, 99.0, 99.0]
    assert math.isnan(series.rolling(CLOSE, 2, "max").iloc[0])
    assert series.rolling(CLOSE, 2, "std").iloc[1] == pytest.approx(np.std([100, 110], ddof=1))


def test_volatility_is_the_sample_std_of_returns_annualised_by_sqrt_periods():
    vol = series.volatility(CLOSE, 3, periods_per_year=252)
    assert vol.iloc[-1] == pytest.approx(np.std([0.1, -0.1, 0.1], ddof=1) * math.sqrt(252))
    assert series.volatility(CLOSE, 3).iloc[-1] == pytest.approx(np.std([0.1, -0.1, 0.1], ddof=1))


@pytest.mark.parametrize(
    ("interval", "asset_class", "expected"),
    [
        (Interval.d1, "stock", 252),
        (Interval.d1, "crypto", 365),
        (Interval.w1, "stock", 52),
        (Interval.h1, "crypto", 24 * 365),
        (Interval.m1, "stock", 390 * 252),
    ],
)
def test_periods_per_year(interval, asset_class, expected):
    assert periods_per_year(interval, DEFAULT_CALENDARS[asset_class]) == pytest.approx(expected)


def test_weekly_resampling_is_ohlcv_aware_and_labelled_by_monday():
    days = frame([10, 11, 12, 13, 14, 15, 16, 17], start="2024-01-03")  # Wednesday .. next Wednesday
    weeks = resample(days, Frequency.week)
    assert [str(t.date()) for t in weeks.index] == ["2024-01-01", "2024-01-08"]
    first = weeks.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 15, 9, 14, 50)


def test_monthly_quarterly_yearly_resampling_skips_empty_periods():
    sparse = frame([1, 2, 3], start="2024-01-31", freq="60D")  # Jan, Mar, May
    assert [str(t.date()) for t in resample(sparse, Frequency.month).index] == [
        "2024-01-01",
        "2024-03-01",
        "2024-05-01",
    ]
    assert [str(t.date()) for t in resample(sparse, Frequency.quarter).index] == ["2024-01-01", "2024-04-01"]
    assert resample(sparse, Frequency.year)["close"].tolist() == [3]


def test_intraday_to_daily():
    minutes = frame(list(range(1, 1441 * 2 + 1)), start="2024-01-01", freq="1min")
    days = resample(minutes, Frequency.day)
    assert days["open"].tolist()[:2] == [1, 1441]
    assert days["volume"].tolist()[:2] == [14400, 14400]


def test_unknown_frequency_lists_the_valid_ones():
    with pytest.raises(ValidationFailed, match="day, week, month, quarter, year"):
        parse_frequency("fortnight")


def test_summary_statistics():
    summary = summarize(frame([100.0, 110.0, 99.0, 108.9]), periods_per_year=252)
    assert (summary.count, summary.min, summary.max, summary.first, summary.last) == (4, 99.0, 110.0, 100.0, 108.9)
    assert summary.mean == pytest.approx(104.475)
    assert summary.median == pytest.approx(104.45)
    assert summary.std == pytest.approx(np.std([100, 110, 99, 108.9], ddof=1))
    assert summary.variance == pytest.approx(summary.std**2)
    assert summary.percent_change == pytest.approx(8.9)
    assert summary.max_drawdown_pct == pytest.approx(-10.0)
    assert summary.annualized_return_pct == pytest.approx((1.089 ** (252 / 3) - 1) * 100)
    assert summary.annualized_volatility_pct == pytest.approx(np.std([0.1, -0.1, 0.1], ddof=1) * math.sqrt(252) * 100)
    assert str(summary.start.date()) == "2024-01-01"


def test_summary_of_one_bar():
    summary = summarize(frame([5.0]), periods_per_year=252)
    assert (summary.std, summary.annualized_return_pct, summary.annualized_volatility_pct) == (0.0, None, None)


def test_indicator_specs_parse_with_defaults():
    parsed = parse_indicators("sma:20, EMA:50,rsi,macd:5:35:5,bollinger:20:2.5,atr:14")
    assert [r.label for r in parsed] == ["sma_20", "ema_50", "rsi_14", "macd_5_35_5", "bollinger_20_2.5", "atr_14"]
    assert parse_indicators("") == parse_indicators(None) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vwap:20", "unknown indicator 'vwap'; valid ones: sma:window, ema:window, rsi:window, macd:fast:slow:signal"),
        ("sma:x", "window 'x' is not a number"),
        ("sma:2.5", "must be a whole number"),
        ("sma:0", "must be above 0"),
        ("sma:1000000", "at most 100000"),
        ("sma:5:6", "too many parameters"),
        ("macd:26:12:9", "fast window must be shorter"),
    ],
)
def test_bad_indicator_specs(spec, message):
    with pytest.raises(ValidationFailed, match=message):
        parse_indicators(spec)


def test_enriched_columns_state_their_parameters_and_keep_nan_warmups():
    options = EnrichOptions(
        window=3, volatility_window=2, normalize_base=1, indicators=tuple(parse_indicators("sma:2,bollinger:3:2"))
    )
    table = enrich(frame([1, 2, 3, 4, 5]), options)
    assert list(table.columns)[5:] == [
        "return",
        "log_return",
        "cumulative_return",
        "rolling_mean_3",
        "rolling_std_3",
        "rolling_min_3",
        "rolling_max_3",
        "volatility_2",
        "normalized_1",
        "drawdown",
        "sma_2",
        "bollinger_upper_3_2",
        "bollinger_middle_3_2",
        "bollinger_lower_3_2",
    ]
    assert table["sma_2"].tolist()[1:] == [1.5, 2.5, 3.5, 4.5]
    assert math.isnan(table["rolling_mean_3"].iloc[1])


def test_windows_longer_than_the_data_say_how_many_bars_there_are():
    options = EnrichOptions(window=50, indicators=tuple(parse_indicators("rsi:14")))
    with pytest.raises(
        ValidationFailed,
        match=r"only 10 bars are available in the range; window needs 50, volatility_window needs 21, rsi_14 needs 15",
    ):
        check_windows(10, options)


def test_regression_chart_history_rows_feed_overlays_but_are_not_drawn():
    """The chart used to draw the warm-up history too, starting months before the asked range."""
    from matplotlib.dates import date2num

    from quantdesk.analytics.charts import draw_chart
    from quantdesk.analytics.charts_spec import ChartSpec

    bars = frame([float(i % 17 + 10) for i in range(200)])
    figure = draw_chart(bars, ChartSpec("t", overlays=tuple(parse_indicators("sma:50")), first_row=150))
    price = figure.axes[0]
    first_shown = date2num(bars.index[150].tz_convert(None).to_pydatetime())  # type: ignore[no-untyped-call]
    assert price.get_xlim()[0] > first_shown - 10  # axis margins only; the history spans 150 days
    sma_line = next(line for line in price.get_lines() if line.get_label() == "sma_50")
    assert not np.isnan(np.asarray(sma_line.get_ydata(), dtype=float)).any()  # warmed up on the history
