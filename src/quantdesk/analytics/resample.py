"""OHLCV-aware resampling to calendar periods, and trimming by date.

Each period is labelled by its **start** (UTC), like every bar in quantdesk: a week is Monday 00:00
to the next Monday (ISO weeks), a month starts on its 1st, a quarter on 1 Jan/Apr/Jul/Oct, a year on
1 January. A period holds the bars whose open time falls inside it; periods without bars are left
out, and the last period may be partial (its bars so far).
"""

from enum import StrEnum

import pandas as pd

from quantdesk.core.errors import ValidationFailed


class Frequency(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


PANDAS_RULES = {
    Frequency.day: "1D",
    Frequency.week: "W-MON",
    Frequency.month: "MS",
    Frequency.quarter: "QS",
    Frequency.year: "YS",
}
AGGREGATION = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def parse_frequency(text: str) -> Frequency:
    try:
        return Frequency(text.strip().lower())
    except ValueError:
        choices = ", ".join(f.value for f in Frequency)
        raise ValidationFailed(f"unknown frequency '{text}'; use one of {choices}") from None


def resample(bars: pd.DataFrame, frequency: Frequency) -> pd.DataFrame:
    """Bars of ``frequency`` from finer bars: open first, high max, low min, close last, volume sum."""
    binned = bars.resample(PANDAS_RULES[frequency], label="left", closed="left")
    out = binned.agg(AGGREGATION)
    return out.dropna(subset=["open"])
