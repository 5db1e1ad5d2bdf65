"""Donchian breakout: long when the close breaks above the highest high of the previous n bars, out when it
falls below the lowest low of the previous m bars.

A Python strategy for quantdesk (docs/strategies.md). Run it from the command line:

    quantdesk backtest ACME --strategy-file examples/strategies/donchian_breakout.py --param n=20
    quantdesk sweep ACME --strategy-file examples/strategies/donchian_breakout.py --grid n=10:60:10 --grid m=5:30:5

or install it in a package that declares it under the entry-point group ``quantdesk.strategies`` so that a
server offers it to every user (pyproject.toml: ``[project.entry-points."quantdesk.strategies"]
donchian_breakout = "my_package.donchian_breakout"``).
"""

import numpy as np
import pandas as pd

NAME = "donchian_breakout"
# Each parameter: default, min, max and whether it is a whole number (the API and the sweep check them).
PARAMS = {
    "n": {"default": 20, "min": 2, "max": 500},
    "m": {"default": 10, "min": 2, "max": 500},
}
STOP_LOSS_PCT = None  # a default stop-loss in percent, used when a run gives none


def lookback(params: dict[str, float]) -> int:
    """Bars before the first signal can appear: quantdesk refuses shorter ranges."""
    return int(max(params["n"], params["m"])) + 1


def signals(bars: pd.DataFrame, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Entries and exits, one boolean per bar, decided at each bar's close (filled at the next open).

    ``bars`` has open, high, low, close and volume columns and a UTC index. Only the past may be used:
    the channel is shifted by one bar, so today's close is compared with the channel up to yesterday.
    """
    n, m = int(params["n"]), int(params["m"])
    upper = bars["high"].rolling(n).max().shift(1)
    lower = bars["low"].rolling(m).min().shift(1)
    entries = (bars["close"] > upper).to_numpy()
    exits = (bars["close"] < lower).to_numpy()
    return entries, exits
