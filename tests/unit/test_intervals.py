import numpy as np
import pytest

from quantdesk.core.errors import ValidationFailed
from quantdesk.market.intervals import DAY_US, Interval, infer_interval, misaligned, parse_interval

MONDAY_2024_01_01 = 19723 * DAY_US


def test_parse_interval_accepts_any_case_and_spaces():
    assert parse_interval(" 1D ") is Interval.d1
    assert parse_interval("15m") is Interval.m15


def test_parse_interval_refuses_binance_month_instead_of_reading_it_as_a_minute():
    with pytest.raises(ValidationFailed, match="unknown interval '1M'"):
        parse_interval("1M")


def test_unknown_interval_lists_the_valid_ones():
    with pytest.raises(ValidationFailed, match="1m, 5m, 15m, 1h, 4h, 1d, 1w"):
        parse_interval("2d")


def test_daily_alignment_is_utc_midnight():
    ts = np.array([MONDAY_2024_01_01, MONDAY_2024_01_01 + 3_600_000_000], dtype=np.int64)
    assert misaligned(ts, Interval.d1).tolist() == [False, True]


def test_weekly_bars_must_start_on_monday():
    ts = np.array([MONDAY_2024_01_01, MONDAY_2024_01_01 + 4 * DAY_US], dtype=np.int64)
    assert misaligned(ts, Interval.w1).tolist() == [False, True]


def test_four_hour_bars_align_to_utc_multiples_of_four_hours():
    hour = 3_600_000_000
    ts = np.array([MONDAY_2024_01_01 + 4 * hour, MONDAY_2024_01_01 + 6 * hour], dtype=np.int64)
    assert misaligned(ts, Interval.h4).tolist() == [False, True]


def test_infer_daily_despite_weekend_gaps():
    days = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 14]
    ts = np.array([MONDAY_2024_01_01 + d * DAY_US for d in days], dtype=np.int64)
    assert infer_interval(ts) is Interval.d1


def test_infer_ignores_order_and_duplicates():
    ts = np.array([3, 1, 2, 2, 0], dtype=np.int64) * 60_000_000
    assert infer_interval(ts) is Interval.m1


def test_infer_refuses_an_unsupported_spacing():
    ts = np.arange(5, dtype=np.int64) * 1_800_000_000  # 30 minutes
    with pytest.raises(ValidationFailed, match="1800 s, which is not a supported interval"):
        infer_interval(ts)


def test_infer_needs_two_timestamps():
    with pytest.raises(ValidationFailed, match="fewer than two"):
        infer_interval(np.array([0], dtype=np.int64))
