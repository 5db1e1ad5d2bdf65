"""The command line shows metrics in people's units: no dicts of floats, ISO durations or 1.474e+04."""

import pytest

from quantdesk.backtest import display


def test_parameters_read_as_given():
    assert display.params({"fast": 50.0, "slow": 200.0, "k": 2.5}) == "fast=50 slow=200 k=2.5"
    assert display.params({}) == ""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("P9Y362D", "9 years 362 days"),
        ("P1D", "1 day"),
        ("P12DT4H30M", "12 days 4 hours 30 minutes"),
        ("PT0S", "0 days"),
        ("2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"),
    ],
)
def test_durations(text: str, shown: str):
    assert display.metric("duration", text) == shown


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("equity_final", 14741.2345, "14,741.23"),
        ("return_pct", -33.4971, "-33.50"),
        ("sharpe", -0.146512, "-0.147"),
        ("trades", 34.0, "34"),
        ("profit_factor", None, "n/a"),
        ("sharpe", float("nan"), "n/a"),
    ],
)
def test_metric_values(name: str, value: object, shown: str):
    assert display.metric(name, value) == shown


def test_sweep_rows_show_parameters_as_given_and_metrics_rounded():
    row = {"fast": 10.0, "slow": 100.0, "return_pct": 33.0412, "sharpe": 0.24321, "trades": 22.0}
    cells = [display.row_value(name, value, {"fast", "slow"}) for name, value in row.items()]
    assert cells == ["10", "100", "33.04", "0.243", "22"]
