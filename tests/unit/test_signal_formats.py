"""The parser against real-world signal formats (tests/signal_corpus.py), scored as the issue scores it:
at least 90% of the valid messages read right (side, symbol, entry, stop, every target, quantity and
order type all equal) and at least 90% of the invalid ones refused with a reason."""

from decimal import Decimal
from typing import Any

from quantdesk.signals.parser import Distance, InvalidSignal, ParsedSignal, parse
from tests.signal_corpus import INVALID, VALID

FIELDS = ("side", "symbol", "entry", "stop_loss", "take_profit", "quantity", "order_type")


def level(value: Any) -> Decimal | Distance:
    if isinstance(value, tuple):
        return Distance(Decimal(value[0]), value[1])
    return Decimal(value)


def read(signal: ParsedSignal) -> dict[str, Any]:
    return {
        "side": signal.side,
        "symbol": signal.symbol,
        "entry": signal.entry,
        "stop_loss": signal.stop_loss if signal.stop_loss is not None else signal.stop_loss_distance,
        "take_profit": [*signal.take_profit, *signal.take_profit_distances],
        "quantity": signal.quantity,
        "order_type": signal.order_type,
    }


def wanted(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        "side": expected["side"],
        "symbol": expected["symbol"],
        "entry": Decimal(expected["entry"]) if "entry" in expected else None,
        "stop_loss": level(expected["stop_loss"]) if "stop_loss" in expected else None,
        "take_profit": [level(v) for v in expected.get("take_profit", [])],
        "quantity": Decimal(expected["quantity"]) if "quantity" in expected else None,
        "order_type": expected.get("order_type"),
    }


def reads_right(message: str, expected: dict[str, Any]) -> str | None:
    """None when the message reads as expected, else what went wrong."""
    try:
        got = read(parse(message))
    except InvalidSignal as refused:
        return f"refused: {refused.detail}"
    want = wanted(expected)
    wrong = [f"{name}={got[name]!r} (want {want[name]!r})" for name in FIELDS if got[name] != want[name]]
    return "; ".join(wrong) or None


def refused_with(message: str, reason: str) -> str | None:
    try:
        signal = parse(message)
    except InvalidSignal as refused:
        return None if reason.lower() in refused.detail.lower() else f"refused, but: {refused.detail}"
    return f"read as {read(signal)}"


def test_the_corpus_covers_every_kind_the_issue_names():
    kinds = {kind for kind, _, _ in VALID}
    assert {"pineconnector", "3commas", "alertatron", "keyvalue", "pipe", "chat-labelled", "chat-russian"} <= kinds
    assert len(VALID) >= 40
    assert len(INVALID) >= 25


def test_at_least_90_percent_of_valid_messages_read_right():
    misses = {message: problem for _, message, expected in VALID if (problem := reads_right(message, expected))}
    share = 1 - len(misses) / len(VALID)
    assert share >= 0.9, f"{share:.0%} read right; misses:\n" + "\n".join(f"{m!r}: {p}" for m, p in misses.items())


def test_at_least_90_percent_of_invalid_messages_are_refused_with_a_reason():
    misses = {message: problem for _, message, reason in INVALID if (problem := refused_with(message, reason))}
    share = 1 - len(misses) / len(INVALID)
    assert share >= 0.9, f"{share:.0%} refused; misses:\n" + "\n".join(f"{m!r}: {p}" for m, p in misses.items())
