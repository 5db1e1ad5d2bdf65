"""Bars as columns of numpy arrays, and the checks every bar passes before it is stored."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import MAX_EPOCH_US, MIN_EPOCH_US
from quantdesk.market.intervals import Interval, alignment_rule, misaligned

MAX_REPORTED_PROBLEMS = 100
PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class BarArrays:
    """Columns of OHLCV bars: ``ts`` in integer microseconds since the epoch (UTC), the rest float64."""

    ts: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts.size)

    @classmethod
    def from_columns(cls, **columns: Any) -> "BarArrays":
        return cls(
            ts=np.ascontiguousarray(columns["ts"], dtype=np.int64),
            **{name: np.ascontiguousarray(columns[name], dtype=np.float64) for name in (*PRICE_FIELDS, "volume")},
        )

    @classmethod
    def empty(cls) -> "BarArrays":
        return cls.from_columns(**{name: [] for name in ("ts", *PRICE_FIELDS, "volume")})

    def take(self, index: NDArray[Any]) -> "BarArrays":
        return BarArrays(*(column[index] for column in self.columns()))

    def columns(self) -> tuple[NDArray[Any], ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    def sorted(self) -> "BarArrays":
        return self.take(np.argsort(self.ts, kind="stable"))

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame indexed by a UTC ``DatetimeIndex`` named ``timestamp``."""
        index = pd.DatetimeIndex(self.ts.astype("datetime64[us]"), name="timestamp").tz_localize("UTC")
        columns = {name: getattr(self, name) for name in (*PRICE_FIELDS, "volume")}
        return pd.DataFrame(columns, index=index, copy=False)


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str | None
    reason: str

    def as_dict(self, line_offset: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row}
        if line_offset is not None:
            out["line"] = self.row + line_offset
        out["field"] = self.field
        out["reason"] = self.reason
        return out


@dataclass
class ProblemList:
    """Problems found in a batch. All are counted; the first ``MAX_REPORTED_PROBLEMS`` by row are listed."""

    items: list[RowProblem] = field(default_factory=list)
    total: int = 0

    def add(self, problem: RowProblem) -> None:
        self.items.append(problem)
        self.total += 1

    def add_mask(self, mask: NDArray[np.bool_], rows: NDArray[np.int64], field_name: str | None, describe: Any) -> None:
        positions = np.flatnonzero(mask)
        self.total += int(positions.size)
        for position in positions[:MAX_REPORTED_PROBLEMS]:
            self.items.append(RowProblem(int(rows[position]), field_name, describe(int(position))))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self, header_lines: int | None) -> None:
        """Raise one ValidationFailed listing the problems; ``header_lines`` adds file line numbers."""
        if not self:
            return
        listed = sorted(self.items, key=lambda p: p.row)[:MAX_REPORTED_PROBLEMS]
        where = "row counts bars from 1"
        if header_lines is not None:
            where += "; line is the line in the file"
        raise ValidationFailed(
            f"{self.total} problem(s) in the bars; nothing was stored. Fix the rows listed in "
            f"errors ({where}; the first {MAX_REPORTED_PROBLEMS} are listed)",
            errors=[p.as_dict(header_lines) for p in listed],
        )


def _fmt(value: Any) -> str:
    return f"{float(value):.10g}"


def find_problems(bars: BarArrays, interval: Interval, rows: NDArray[np.int64] | None = None) -> ProblemList:
    """Check prices, ranges, volume, alignment and uniqueness; ``rows`` numbers the bars for messages."""
    if rows is None:
        rows = np.arange(1, len(bars) + 1, dtype=np.int64)
    problems = ProblemList()
    for name in PRICE_FIELDS:
        column = getattr(bars, name)
        bad = ~np.isfinite(column) | (column <= 0)
        problems.add_mask(
            bad, rows, name, lambda i, c=column, n=name: f"{n} must be a positive finite number, got {_fmt(c[i])}"
        )
    finite = np.isfinite(bars.high) & np.isfinite(bars.low)
    inverted = finite & (bars.high < bars.low)
    problems.add_mask(inverted, rows, "high", lambda i: f"high {_fmt(bars.high[i])} is below low {_fmt(bars.low[i])}")
    valid_range = finite & ~inverted
    for name in ("open", "close"):
        column = getattr(bars, name)
        outside = valid_range & np.isfinite(column) & ((column < bars.low) | (column > bars.high))
        problems.add_mask(
            outside,
            rows,
            name,
            lambda i, c=column, n=name: (
                f"{n} {_fmt(c[i])} is outside the bar's range low {_fmt(bars.low[i])} .. high {_fmt(bars.high[i])}"
            ),
        )
    bad_volume = ~np.isfinite(bars.volume) | (bars.volume < 0)
    problems.add_mask(
        bad_volume, rows, "volume", lambda i: f"volume must be a finite number >= 0, got {_fmt(bars.volume[i])}"
    )
    out_of_range = (bars.ts < MIN_EPOCH_US) | (bars.ts > MAX_EPOCH_US)
    problems.add_mask(out_of_range, rows, "timestamp", lambda i: "timestamp is outside the years 1 to 9999")
    off_grid = misaligned(bars.ts, interval) & ~out_of_range
    problems.add_mask(
        off_grid,
        rows,
        "timestamp",
        lambda i: f"{format_ts(int(bars.ts[i]))} is not aligned to {interval.value}: {alignment_rule(interval)}",
    )
    _find_duplicates(bars, rows, problems)
    return problems


def _find_duplicates(bars: BarArrays, rows: NDArray[np.int64], problems: ProblemList) -> None:
    order = np.argsort(bars.ts, kind="stable")
    ordered = bars.ts[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
    problems.total += int(repeats.size)
    for position in repeats[:MAX_REPORTED_PROBLEMS]:
        first = order[np.searchsorted(ordered, ordered[position])]
        problems.items.append(
            RowProblem(
                int(rows[order[position]]),
                "timestamp",
                f"duplicate timestamp {format_ts(int(ordered[position]))}, first seen in row {int(rows[first])}",
            )
        )


def format_ts(ts_us: int) -> str:
    """ISO 8601 UTC text of a microsecond timestamp, with a Z suffix."""
    text = str(np.datetime64(ts_us, "us"))
    return text.removesuffix(".000000") + "Z"
