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


# Coarser and coarser periods, for drawing a long fine series: (label, pandas rule, approximate span in s).
COARSER = (
    ("5m", "5min", 300),
    ("15m", "15min", 900),
    ("1h", "1h", 3_600),
    ("4h", "4h", 14_400),
    ("day", "1D", 86_400),
    ("week", "W-MON", 7 * 86_400),
    ("month", "MS", 30 * 86_400),
    ("quarter", "QS", 91 * 86_400),
    ("year", "YS", 365 * 86_400),
)


def coarsen(bars: pd.DataFrame, first_row: int, max_rows: int) -> tuple[pd.DataFrame, int, str | None]:
    """``bars`` (history rows before ``first_row``, then the range) aggregated to the finest period of
    ``COARSER`` that leaves at most ``max_rows`` rows in the range: the bars, the new ``first_row`` and
    the period's label; unchanged (label None) when the range already fits."""
    shown = bars.iloc[first_row:]
    if len(shown) <= max_rows:
        return bars, first_row, None
    span_s = (shown.index[-1] - shown.index[0]).total_seconds()
    for label, rule, period_s in COARSER:
        if rule != "YS" and span_s / period_s > max_rows * 1.5:  # too fine by far: skip the resampling
            continue
        binned = bars.resample(rule, label="left", closed="left").agg(AGGREGATION).dropna(subset=["open"])
        first = int((binned.index < shown.index[0]).sum())
        if len(binned) - first <= max_rows:
            return binned, first, label
    return binned, first, label  # a range of over max_rows years: the yearly bars, whatever their count
