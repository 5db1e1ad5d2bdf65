"""The paper broker's pure rules: fill prices, commissions, triggers and average-cost positions."""

from decimal import Decimal as D

import pytest

from quantdesk.trading.matching import Costs, Resting, apply_fill, execution_price

COSTS = Costs(commission_pct=D("0.1"), commission_fixed=D("1"), slippage_bps=D("10"))


def order(side: str, kind: str, limit: str | None = None, stop: str | None = None, triggered: bool = False) -> Resting:
    return Resting(side, kind, D(limit) if limit else None, D(stop) if stop else None, triggered)


def test_commission_and_slippage():
    assert COSTS.commission(D("1000")) == D("2.00000000")  # 0.1% of 1000, plus 1
    assert COSTS.slipped("buy", D("100")) == D("100.10000000")
    assert COSTS.slipped("sell", D("100")) == D("99.90000000")


@pytest.mark.parametrize(
    ("resting", "market", "expected"),
    [
        (order("buy", "market"), "100", "100.1"),
        (order("buy", "limit", limit="99"), "100", None),  # not yet
        (order("buy", "limit", limit="100.05"), "100", "100.05"),  # slipped price capped at the limit
        (order("buy", "limit", limit="101"), "100", "100.1"),
        (order("sell", "limit", limit="101"), "100", None),
        (order("sell", "limit", limit="99.95"), "100", "99.95"),
        (order("buy", "stop", stop="105"), "104", None),
        (order("buy", "stop", stop="105"), "106", "106.106"),
        (order("sell", "stop", stop="95"), "94", "93.906"),
        (order("buy", "stop_limit", limit="106", stop="105"), "107", None),  # stop reached, limit not
        (order("buy", "stop_limit", limit="106", stop="105", triggered=True), "105.5", "105.6055"),
        (order("sell", "stop_limit", limit="94", stop="95", triggered=True), "94.5", "94.4055"),
    ],
)
def test_execution_prices(resting: Resting, market: str, expected: str | None):
    price = execution_price(resting, D(market), COSTS)
    assert price == (D(expected) if expected else None)


def test_positions_by_average_cost():
    opened = apply_fill(D(0), D(0), "buy", D(10), D(100))
    assert (opened.quantity, opened.avg_cost, opened.realized) == (D(10), D(100), D(0))
    added = apply_fill(opened.quantity, opened.avg_cost, "buy", D(10), D(110))
    assert (added.quantity, added.avg_cost) == (D(20), D(105))
    reduced = apply_fill(added.quantity, added.avg_cost, "sell", D(5), D(120))
    assert (reduced.quantity, reduced.avg_cost, reduced.realized) == (D(15), D(105), D(75))
    closed = apply_fill(reduced.quantity, reduced.avg_cost, "sell", D(15), D(100))
    assert (closed.quantity, closed.avg_cost, closed.realized) == (D(0), D(0), D(-75))
    flipped = apply_fill(D(5), D(100), "sell", D(8), D(90))
    assert (flipped.quantity, flipped.avg_cost, flipped.realized) == (D(-3), D(90), D(-50))
    covered = apply_fill(D(-3), D(90), "buy", D(3), D(80))
    assert (covered.quantity, covered.realized) == (D(0), D(30))
