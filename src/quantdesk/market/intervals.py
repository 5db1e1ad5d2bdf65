"""Bar intervals: their lengths, alignment rules and inference from timestamp spacing."""

from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from quantdesk.core.errors import ValidationFailed

US = 1_000_000
DAY_US = 86_400 * US
# 1970-01-01 was a Thursday; weekly bars start on Monday 00:00 UTC (ISO weeks, as Binance does).
MONDAY_OFFSET_US = 4 * DAY_US


class Interval(StrEnum):
    m1 = "1m"
    m5 = "5m"
    m15 = "15m"
    h1 = "1h"
    h4 = "4h"
    d1 = "1d"
    w1 = "1w"

    @property
    def micros(self) -> int:
        return INTERVAL_MICROS[self]


INTERVAL_MICROS: dict[Interval, int] = {
    Interval.m1: 60 * US,
    Interval.m5: 300 * US,
    Interval.m15: 900 * US,
    Interval.h1: 3_600 * US,
    Interval.h4: 14_400 * US,
    Interval.d1: DAY_US,
    Interval.w1: 7 * DAY_US,
}
VALID_INTERVALS = ", ".join(i.value for i in Interval)


def parse_interval(text: str) -> Interval:
    cleaned = text.strip()
    # "1M" is a month in Binance's vocabulary; lower-casing it would silently mean one minute.
    if cleaned != "1M":
        cleaned = cleaned.lower()
    try:
        return Interval(cleaned)
    except ValueError:
        raise ValidationFailed(f"unknown interval '{text}'; use one of {VALID_INTERVALS}") from None


def misaligned(ts_us: NDArray[np.int64], interval: Interval) -> NDArray[np.bool_]:
    """Which timestamps do not start a bar of ``interval`` (UTC boundaries; Mondays for 1w)."""
    offset = MONDAY_OFFSET_US if interval is Interval.w1 else 0
    return np.asarray((ts_us - offset) % interval.micros != 0)


def alignment_rule(interval: Interval) -> str:
    if interval is Interval.w1:
        return "weekly bars start on Monday 00:00 UTC"
    if interval is Interval.d1:
        return "daily bars start at 00:00 UTC"
    return f"{interval.value} bars start on a multiple of {interval.value} from 00:00 UTC"


def infer_interval(ts_us: NDArray[np.int64]) -> Interval:
    """The interval whose length is the most common spacing between consecutive timestamps.

    Gaps (weekends, holidays, missing bars) are longer than the interval and never the most
    common spacing in real data, so the mode is robust where the minimum or mean are not.
    """
    unique = np.unique(ts_us)
    if unique.size < 2:
        repeated = f" ({ts_us.size} rows share one timestamp)" if ts_us.size > 1 else ""
        raise ValidationFailed(
            f"cannot infer the interval from fewer than two distinct timestamps{repeated}; "
            f"pass interval= one of {VALID_INTERVALS}"
        )
    spacing, counts = np.unique(np.diff(unique), return_counts=True)
    most_common = int(spacing[np.argmax(counts)])
    for interval, micros in INTERVAL_MICROS.items():
        if micros == most_common:
            return interval
    raise ValidationFailed(
        f"the most common spacing between timestamps is {most_common / US:g} s, which is not a "
        f"supported interval; pass interval= one of {VALID_INTERVALS} or resample the data"
    )
