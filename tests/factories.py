"""Plain ``make_*`` builders for test data."""

from datetime import UTC, datetime
from typing import Any

import numpy as np

from quantdesk.core.types import to_epoch_us
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def make_bars(
    count: int = 10,
    interval: Interval = Interval.d1,
    start: datetime = START,
    seed: int = 7,
    weekdays_only: bool = False,
) -> BarArrays:
    times = bar_times(to_epoch_us(start), count, interval, weekdays_only)
    return generate_bars(SeriesSpec(), times, seed)


def bars_as_json(bars: BarArrays) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": str(np.datetime64(int(ts), "us")) + "Z",
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
        }
        for ts, o, h, lo, c, v in zip(*(col.tolist() for col in bars.columns()), strict=True)
    ]


def bars_as_csv(bars: BarArrays, header: str = "timestamp,open,high,low,close,volume") -> str:
    lines = [header]
    for row in bars_as_json(bars):
        lines.append(",".join(str(row[k]) for k in ("timestamp", "open", "high", "low", "close", "volume")))
    return "\n".join(lines) + "\n"


def bar_row(
    ts: str = "2024-01-01T00:00:00Z", o: Any = 10, h: Any = 12, lo: Any = 9, c: Any = 11, v: Any = 100
) -> dict[str, Any]:
    return {"timestamp": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v}
