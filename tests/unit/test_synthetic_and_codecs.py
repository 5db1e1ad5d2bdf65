"""The synthetic generator, the PostgreSQL COPY codec and provider body parsing (no database)."""

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantdesk.core.errors import ProviderRejected
from quantdesk.market.bar_store import decode_pg_copy, encode_pg_copy
from quantdesk.market.bars import BarArrays, find_problems
from quantdesk.market.intervals import DAY_US, Interval
from quantdesk.market.providers import alphavantage, coingecko
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars
from tests.factories import make_bars


def test_same_seed_same_bars_other_seed_other_bars():
    a, b, c = make_bars(300, seed=1), make_bars(300, seed=1), make_bars(300, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.columns(), b.columns(), strict=True))
    assert not np.array_equal(a.close, c.close)


def test_synthetic_bars_are_valid_and_have_two_volatility_regimes():
    bars = generate_bars(SeriesSpec(switch_probability=0.02), bar_times(0, 5000, Interval.d1, False), 3)
    assert not find_problems(bars, Interval.d1)
    returns = np.abs(np.diff(np.log(bars.close)))
    rolling = np.convolve(returns, np.ones(50) / 50, mode="valid")
    assert rolling.max() > 1.8 * rolling.min()


@pytest.mark.parametrize("interval", list(Interval))
def test_regression_bar_times_sit_on_the_interval_grid(interval):
    """Weekly times used to fall on Thursdays, the epoch's weekday, not on Mondays."""
    times = bar_times(12_345_678_901, 10, interval, weekdays_only=False)
    assert not find_problems(generate_bars(SeriesSpec(), times, 1), interval)


def test_weekday_calendar_skips_weekends():
    times = bar_times(0, 20, Interval.d1, weekdays_only=True)
    weekdays = ((times // DAY_US) + 3) % 7
    assert times.size == 20
    assert weekdays.max() < 5


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**50), 2**50), st.floats(allow_nan=False), st.floats(), st.floats(), st.floats(), st.floats()
        ),
        max_size=50,
    )
)
def test_pg_binary_copy_round_trips(rows):
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 6
    bars = BarArrays.from_columns(
        ts=columns[0], open=columns[1], high=columns[2], low=columns[3], close=columns[4], volume=columns[5]
    )
    back = decode_pg_copy(encode_pg_copy(bars))
    for original, decoded in zip(bars.columns(), back.columns(), strict=True):
        np.testing.assert_array_equal(original, decoded)


def test_decode_refuses_what_is_not_a_copy_stream():
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        decode_pg_copy(b"hello")


def test_alphavantage_key_is_scrubbed_from_messages():
    text = "We have detected your API key as ABC123 and our standard API rate limit is 25 requests per day."
    assert "ABC123" not in alphavantage.scrub(text, None)
    assert alphavantage.scrub("key SECRET9 seen", "SECRET9") == "key *** seen"


def test_coingecko_half_hour_candles_pair_into_exact_hours():
    half = 1_800_000
    start = 1_704_067_200_000  # 2024-01-01 00:00 UTC in ms
    body = [[start + (i + 1) * half, 10 + i, 12 + i, 9 + i, 11 + i] for i in range(4)]
    bars, interval = coingecko.bars_from_ohlc(body)
    assert interval is Interval.h1
    assert bars.open.tolist() == [10, 12]
    assert bars.close.tolist() == [12, 14]
    assert bars.high.tolist() == [13, 15]
    assert bars.low.tolist() == [9, 11]


def test_coingecko_four_day_candles_are_refused():
    four_days = 4 * 86_400_000
    with pytest.raises(ProviderRejected, match="match no quantdesk interval"):
        coingecko.bars_from_ohlc([[i * four_days, 1, 2, 0.5, 1.5] for i in range(1, 4)])


def test_coingecko_hourly_samples_make_daily_bars():
    hour = 3_600_000
    start = 1_704_067_200_000
    body = {
        "prices": [[start + i * hour, 100 + i] for i in range(50)],
        "total_volumes": [[start + i * hour, 1000.0 * i] for i in range(50)],
    }
    bars = coingecko.bars_from_market_chart(body)
    assert len(bars) == 2  # the samples cover two whole days
    assert (bars.open[0], bars.close[0], bars.high[0], bars.low[0]) == (100, 124, 124, 100)
    assert bars.volume[0] == 24_000.0


def test_coingecko_error_shapes():
    assert coingecko.error_message({"error": "coin not found"}) == (None, "coin not found")
    assert coingecko.error_message({"status": {"error_code": 429, "error_message": "slow"}}) == (429, "slow")
    assert coingecko.error_message({"error": {"status": {"error_code": 10012, "error_message": "range "}}}) == (
        10012,
        "range",
    )
    assert coingecko.error_message("<html>") == (None, "")


@pytest.mark.parametrize(
    ("symbol", "coin", "vs"),
    [
        ("BTCUSD", "bitcoin", "usd"),
        ("eth-eur", "ethereum", "eur"),
        ("SOLUSDT", "solana", "usd"),
        ("BTC", "bitcoin", "usd"),
    ],
)
def test_coin_guessing(symbol, coin, vs):
    assert coingecko.resolve_coin(symbol, None, None) == coingecko.CoinRef(coin, vs)


def test_days_for_each_endpoint():
    assert coingecko.days_for("1d", 10, pro=False) == 11
    assert coingecko.days_for("1d", 1000, pro=False) == 365
    assert coingecko.days_for("1d", 1000, pro=True) == 1001
    assert coingecko.days_for("4h", 3, pro=False) == 7
    assert coingecko.days_for("4h", 100, pro=False) == 30
    assert coingecko.days_for("1h", 1, pro=False) == 1
