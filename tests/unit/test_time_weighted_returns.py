"""Time-weighted returns: cash flows start new periods and are never performance."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from quantdesk.gamification.returns import Flow, time_weighted

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def flow(day: int, kind: str, amount: str, balance: str, equity_before: str | None) -> Flow:
    return Flow(
        T0 + timedelta(days=day), kind, D(amount), D(balance), None if equity_before is None else D(equity_before)
    )


def test_one_deposit_then_growth_is_the_plain_return():
    assert time_weighted([flow(0, "deposit", "10000", "10000", "0")], D("11000")) == pytest.approx(10.0)


def test_withdrawing_nearly_everything_after_a_tiny_profit_is_no_performance():
    """The gamed board of the issue: +0.0089 on 10,000, then 9,999.99 withdrawn, used to read +89%."""
    flows = [
        flow(0, "deposit", "10000", "10000", "0"),
        flow(5, "withdrawal", "-9999.99", "0.0189", "10000.0089"),
    ]
    assert time_weighted(flows, D("0.0189")) == pytest.approx(0.000089, rel=1e-6)


def test_periods_are_linked_whatever_the_money_in_each():
    flows = [
        flow(0, "deposit", "1000", "1000", "0"),  # 1,000 -> 1,100: +10%
        flow(10, "deposit", "100000", "101100", "1100"),  # 101,100 -> 90,990: -10%
    ]
    assert time_weighted(flows, D("90990")) == pytest.approx((1.1 * 0.9 - 1) * 100)


def test_a_reset_starts_again_from_the_cash_it_restored():
    flows = [
        flow(0, "deposit", "10000", "10000", "0"),  # 10,000 -> 5,000: -50%
        flow(3, "reset", "6000", "10000", "5000"),  # positions cleared, cash back to 10,000
    ]
    assert time_weighted(flows, D("12000")) == pytest.approx((0.5 * 1.2 - 1) * 100)


def test_no_return_when_a_period_starts_at_nothing():
    flows = [flow(0, "deposit", "10000", "10000", "0"), flow(1, "withdrawal", "-10000", "0", "10000")]
    assert time_weighted(flows, D("0")) is None
    assert time_weighted([], D("100")) is None


def test_a_window_links_the_periods_that_overlap_it():
    flows = [
        flow(0, "deposit", "1000", "1000", "0"),  # +10%, before the window
        flow(20, "deposit", "1000", "2100", "1100"),  # 2,100 -> 2,310: +10%, inside it
    ]
    assert time_weighted(flows, D("2310"), since=T0 + timedelta(days=25)) == pytest.approx(10.0)
    assert time_weighted(flows, D("2310"), since=T0 + timedelta(days=5)) == pytest.approx(21.0)


def test_flows_from_before_equities_were_kept_count_realised_pnl_only():
    flows = [
        flow(0, "deposit", "10000", "10000", None),  # stored before migration 0012
        flow(30, "deposit", "5000", "15500", "10500"),  # equity known from here: 15,500 -> 15,810, +2%
    ]
    assert time_weighted(flows, D("15810"), legacy_pnl=D("500")) == pytest.approx((1.05 * 1.02 - 1) * 100)
    only_legacy = [flow(0, "deposit", "10000", "10000", None)]
    assert time_weighted(only_legacy, D("99999"), legacy_pnl=D("250")) == pytest.approx(2.5)
