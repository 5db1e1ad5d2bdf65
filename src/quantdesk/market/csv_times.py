"""Timestamps in bar CSV files: epoch numbers, ISO 8601 text, or separate date and time columns.

Offsets are converted to UTC; naive text means UTC; a file that mixes the two is refused. One
exception is made for real exports: when every zoned timestamp is a *local* midnight (yfinance's
daily ``history()`` writes ``2024-01-02 00:00:00-05:00``), the values are trading dates, and the
date is kept rather than shifting every bar to 05:00 UTC.
"""

import re

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.core.errors import ValidationFailed
from quantdesk.market.bars import MAX_REPORTED_PROBLEMS, ProblemList

ZONED = re.compile(r"(?:[zZ]|[+-]\d{2}:?\d{2})$")
OFFSET = re.compile(r"\s*(?:[zZ]|[+-]\d{2}:?\d{2})$")
EPOCH = re.compile(r"-?\d+(\.\d+)?")
# Far outside years 1-9999, yet a value float64 rounding cannot pull back inside: an absurd epoch
# then fails the range check instead of wrapping around int64.
EPOCH_CLIP_US = 2.0**62
LOCAL_MIDNIGHT_NOTE = (
    "timestamps are local midnights with a UTC offset (as yfinance writes daily bars); "
    "stored as their trading dates at 00:00 UTC"
)


def parse_timestamps(
    cells: dict[str, pd.Series], rows: NDArray[np.int64], problems: ProblemList
) -> tuple[NDArray[np.int64], str | None]:
    """Microseconds since the epoch for every row, and a note when a convention was applied."""
    if "date" in cells:
        return _date_and_time(cells["date"], cells["clock"], rows, problems), None
    raw = cells["timestamp"]
    if raw.str.fullmatch(EPOCH).all():
        return epoch_to_us(pd.to_numeric(raw).to_numpy(dtype=np.float64)), None
    zoned = raw.str.contains(ZONED).to_numpy()
    if zoned.any() and not zoned.all():
        _refuse_mixed_zones(raw, rows, zoned)
    if zoned.all():
        local = pd.to_datetime(raw.str.replace(OFFSET, "", regex=True), format="ISO8601", errors="coerce")
        if local.notna().all() and (local == local.dt.normalize()).all() and not _all_utc(raw):
            return _collect(local.dt.tz_localize("UTC"), raw, rows, problems), LOCAL_MIDNIGHT_NOTE
    parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    return _collect(parsed, raw, rows, problems), None


def _all_utc(raw: pd.Series) -> bool:
    return bool(raw.str.contains(r"(?:[zZ]|[+-]00:?00)$").all())


def _date_and_time(
    dates: pd.Series, clocks: pd.Series, rows: NDArray[np.int64], problems: ProblemList
) -> NDArray[np.int64]:
    """Separate date and time columns: Stooq's 20240102 + 153000 or 2024-01-02 + 15:30:00,
    MetaTrader's 2024.01.02 + 15:30."""
    if dates.str.fullmatch(r"\d{8}").all():
        text = dates + clocks.str.zfill(6)
        parsed = pd.to_datetime(text, format="%Y%m%d%H%M%S", utc=True, errors="coerce")
    else:
        times = clocks.where(
            ~clocks.str.fullmatch(r"\d{6}"), clocks.str.replace(r"(\d\d)(\d\d)(\d\d)", r"\1:\2:\3", regex=True)
        )
        text = dates.str.replace(".", "-", regex=False) + "T" + times
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return _collect(parsed, dates + " " + clocks, rows, problems)


def _refuse_mixed_zones(raw: pd.Series, rows: NDArray[np.int64], zoned: NDArray[np.bool_]) -> None:
    minority = ~zoned if zoned.sum() >= zoned.size / 2 else zoned
    values = raw.to_numpy()
    examples = [
        {
            "row": int(rows[i]),
            "field": "timestamp",
            "reason": f"'{values[i]}' {'has' if zoned[i] else 'has no'} time zone",
        }
        for i in np.flatnonzero(minority)[:MAX_REPORTED_PROBLEMS]
    ]
    raise ValidationFailed(
        "timestamps mix time zones: some carry a UTC offset and some do not, so the naive ones are "
        "ambiguous; give every timestamp an offset (or none, meaning UTC)",
        errors=examples,
    )


def _collect(parsed: pd.Series, raw: pd.Series, rows: NDArray[np.int64], problems: ProblemList) -> NDArray[np.int64]:
    invalid = parsed.isna().to_numpy()
    values = raw.to_numpy()
    problems.add_mask(
        invalid,
        rows,
        "timestamp",
        lambda i: (
            f"'{values[i] or '(empty)'}' is not a date; use ISO 8601 such as 2024-01-31 or "
            "2024-01-31T09:30:00Z, or epoch seconds/milliseconds"
        ),
    )
    if invalid.any():
        return np.zeros(len(parsed), dtype=np.int64)
    return parsed.dt.as_unit("us").astype("int64").to_numpy()  # type: ignore[no-any-return]


def epoch_to_us(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Epoch numbers in seconds, milliseconds, microseconds or nanoseconds, told apart by size."""
    magnitude = float(np.nanmax(np.abs(values))) if values.size else 0.0
    if magnitude >= 1e17:
        scale = 1e-3
    elif magnitude >= 1e14:
        scale = 1.0
    elif magnitude >= 1e11:
        scale = 1e3
    else:
        scale = 1e6
    return np.clip(np.rint(values * scale), -EPOCH_CLIP_US, EPOCH_CLIP_US).astype(np.int64)
