"""How the command line shows a backtest's parameters, metrics and sweep rows: in people's units."""

import math
import re
from typing import Any

MONEY_METRICS = frozenset({"equity_final", "equity_peak", "commissions"})
COUNT_METRICS = frozenset({"trades"})
# Durations come as ISO 8601 (pydantic writes a timedelta so): P9Y363D, P12DT4H30M.
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$")
_UNITS = ("year", "day", "hour", "minute", "second")


def number(value: float) -> str:
    """A parameter: 20, not 20.0; 2.5 as it is."""
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


def params(values: dict[str, Any]) -> str:
    return " ".join(f"{name}={number(value)}" for name, value in values.items())


def duration(text: str) -> str:
    found = _DURATION.match(text)
    if found is None:
        return text
    parts = [
        f"{int(float(amount)):,} {unit}{'s' if float(amount) != 1 else ''}"
        for amount, unit in zip(found.groups(), _UNITS, strict=True)
        if amount and float(amount)
    ]
    return " ".join(parts) or "0 days"


def metric(name: str, value: Any) -> str:
    """A metric's value: money with cents, percentages and ratios with two or three decimals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, str):
        return duration(value)
    if name in COUNT_METRICS or isinstance(value, int):
        return f"{int(value):,}"
    if name in MONEY_METRICS or name.endswith("_pct"):
        return f"{value:,.2f}"
    return f"{value:,.3f}"


def row_value(name: str, value: Any, parameters: set[str]) -> str:
    """A cell of a sweep's row: parameters as given, metrics as ``metric`` shows them."""
    if name in parameters and isinstance(value, int | float):
        return number(float(value))
    return metric(name, value)
