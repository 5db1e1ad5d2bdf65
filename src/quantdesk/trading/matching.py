"""Pure rules of the paper broker: fill prices, commissions, when a resting order triggers, and how a fill
changes a position. Everything is Decimal."""

from dataclasses import dataclass
from decimal import Decimal

from quantdesk.core.config import Settings
from quantdesk.core.money import quantize

HUNDRED, BPS = Decimal(100), Decimal(10_000)


@dataclass(frozen=True)
class Costs:
    commission_pct: Decimal = Decimal(0)
    commission_fixed: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Costs":
        return cls(settings.commission_pct, settings.commission_fixed, settings.slippage_bps)

    def commission(self, notional: Decimal) -> Decimal:
        return quantize(notional * self.commission_pct / HUNDRED + self.commission_fixed)

    def slipped(self, side: str, price: Decimal) -> Decimal:
        """A market fill: the price moved against the trader by the slippage."""
        factor = self.slippage_bps / BPS
        return quantize(price * (1 + factor) if side == "buy" else price * (1 - factor))


@dataclass(frozen=True)
class Resting:
    """What the matching rules need of an order."""

    side: str
    type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    stop_triggered: bool


def stop_reached(order: Resting, market: Decimal) -> bool:
    stop = order.stop_price if order.stop_price is not None else market  # validated: stops carry one
    return market >= stop if order.side == "buy" else market <= stop


def execution_price(order: Resting, market: Decimal, costs: Costs) -> Decimal | None:
    """The price an order fills at with the market at ``market``, or None if it does not fill now.

    Market and triggered stop orders fill at the market with slippage. Limit orders (and triggered
    stop-limits) fill when the market reaches the limit, at the slipped market price but never worse
    than the limit.
    """
    kind = order.type
    if kind in ("stop", "stop_limit") and not (order.stop_triggered or stop_reached(order, market)):
        return None
    if kind in ("market", "stop"):
        return costs.slipped(order.side, market)
    limit = order.limit_price if order.limit_price is not None else market  # validated: limits carry one
    slipped = costs.slipped(order.side, market)
    if order.side == "buy":
        return min(slipped, limit) if market <= limit else None
    return max(slipped, limit) if market >= limit else None


@dataclass(frozen=True)
class Holding:
    quantity: Decimal  # signed: negative is short
    avg_cost: Decimal
    realized: Decimal  # from this fill


def apply_fill(quantity: Decimal, avg_cost: Decimal, side: str, size: Decimal, price: Decimal) -> Holding:
    """A position after a fill, by average cost: adding keeps a weighted average; reducing realises
    (price - average) per unit closed; crossing zero opens the rest at the fill price."""
    signed = size if side == "buy" else -size
    if quantity == 0 or (quantity > 0) == (signed > 0):
        total = abs(quantity) + size
        average = quantize((abs(quantity) * avg_cost + size * price) / total)
        return Holding(quantity + signed, average, Decimal(0))
    closing = min(abs(quantity), size)
    direction = 1 if quantity > 0 else -1
    realized = quantize(closing * (price - avg_cost) * direction)
    remaining = quantity + signed
    if remaining == 0:
        return Holding(Decimal(0), Decimal(0), realized)
    if (remaining > 0) != (quantity > 0):
        return Holding(remaining, price, realized)
    return Holding(remaining, avg_cost, realized)
