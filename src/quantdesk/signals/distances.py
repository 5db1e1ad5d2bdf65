"""Stop-loss and take-profit levels given as distances (pips, points or percent) rather than prices.

A signal may say "SL 20 pips" or "TP 2 %": the level is a distance from the price the trade opens at.
The intake turns it into a price from the entry (or, for a market order, the last price) so that the
order can be checked and stored; when the entry fills, the signal's legs are priced again from the fill
price, which slippage or a gap may have moved."""

from decimal import Decimal
from typing import Any

from quantdesk.core.money import quantize
from quantdesk.signals.parser import Distance, ParsedSignal


def pip_size(symbol: str) -> Decimal:
    """The usual pip: 0.01 for yen pairs and silver, 0.1 for gold, 0.0001 for other currency pairs."""
    if symbol.endswith("JPY") or symbol.startswith("XAG"):
        return Decimal("0.01")
    if symbol.startswith("XAU"):
        return Decimal("0.1")
    return Decimal("0.0001")


def price_from(distance: Distance, symbol: str, reference: Decimal, direction: int) -> Decimal:
    """A distance in pips, points (whole units of price) or percent of ``reference`` from it, up (+1) or
    down (-1)."""
    if distance.unit == "percent":
        return quantize(reference + direction * reference * distance.value / 100)
    unit = pip_size(symbol) if distance.unit == "pips" else Decimal(1)
    return reference + direction * distance.value * unit


def stored(parsed: ParsedSignal) -> dict[str, Any] | None:
    """The signal's distances as its row keeps them (JSON), or None when it gave prices only."""
    if parsed.stop_loss_distance is None and not parsed.take_profit_distances:
        return None
    stop = parsed.stop_loss_distance
    return {
        "stop_loss": _as_json(stop) if stop is not None else None,
        "take_profit": [_as_json(distance) for distance in parsed.take_profit_distances],
    }


def _as_json(distance: Distance) -> dict[str, str]:
    return {"value": str(distance.value), "unit": distance.unit}


def loaded(kept: dict[str, Any] | None) -> tuple[Distance | None, list[Distance]]:
    """``stored``'s reverse: the stop-loss distance and the take-profit distances."""
    if not kept:
        return None, []
    stop = kept.get("stop_loss")
    takes = kept.get("take_profit") or []
    return (
        Distance(Decimal(stop["value"]), stop["unit"]) if stop else None,
        [Distance(Decimal(take["value"]), take["unit"]) for take in takes],
    )
