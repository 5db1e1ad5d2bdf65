"""Recognise and parse bar CSV files: Yahoo Finance, Stooq, Binance klines and a plain layout.

Parsing is strict where guessing would store wrong data (unknown columns, unparseable dates,
naive and zoned timestamps mixed) and lenient where real exports are messy but unambiguous
(column case and spacing, a UTF-8 BOM, ``;`` or tab separators, Yahoo's all-``null`` rows).
"""

import csv
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.core.errors import UnsupportedMediaType, ValidationFailed
from quantdesk.market.bars import BarArrays, ProblemList
from quantdesk.market.csv_times import parse_timestamps
from quantdesk.market.intervals import DAY_US, Interval

TIME_ALIASES = ("timestamp", "datetime", "date", "time", "ts", "open_time", "opentime", "date_time")
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last"),
    "volume": ("volume", "vol", "v", "base_volume"),
}
# Columns real exports carry that a bar does not need; anything else unknown is refused.
IGNORED_COLUMNS = frozenset(
    {
        "adj_close",
        "adjclose",
        "adjusted_close",
        "dividends",
        "stock_splits",
        "capital_gains",
        "openint",
        "open_interest",
        "ticker",
        "per",
        "close_time",
        "quote_volume",
        "quote_asset_volume",
        "count",
        "trades",
        "number_of_trades",
        "taker_buy_base_volume",
        "taker_buy_base_asset_volume",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "taker_buy_quote_asset_volume",
        "ignore",
        "symbol",
        "vwap",
        "unix",
        "repaired?",
        "spread",
    }
)
BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
NULL_MARKERS = frozenset({"", "null", "nan", "none", "n/a", "na", "-"})


@dataclass
class ParsedCsv:
    bars: BarArrays
    rows: NDArray[np.int64]  # 1-based data row of each bar, for error messages
    format: str
    header_lines: int  # lines before the first data row: file line = row + header_lines
    notes: list[str] = field(default_factory=list)


def decode_text(data: bytes) -> str:
    if not data.strip():
        raise ValidationFailed("the file is empty; send a CSV with a header and at least one row")
    head = data[:65_536]
    nul = head.find(b"\x00")
    if nul >= 0:
        raise UnsupportedMediaType(f"the file is binary (NUL byte at offset {nul}), not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaType(
            f"the file is not UTF-8 text (invalid byte at offset {exc.start}); export the CSV as UTF-8"
        ) from None


def _sniff_delimiter(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    if counts[best] == 0:
        raise ValidationFailed(
            "the first line has no column separator; expected a CSV such as 'timestamp,open,high,low,close,volume'"
        )
    return best


def _normalise(name: str) -> str:
    cleaned = name.strip().strip('"').strip("<>").strip().lower()
    return re.sub(r"[\s\-]+", "_", cleaned)


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


MAX_COLUMNS = 64  # the widest known layout (Binance klines) has 12


def parse_csv(data: bytes) -> ParsedCsv:
    """Detect the layout of ``data`` and return its bars (unvalidated) with their row numbers."""
    text = decode_text(data)
    first_line = next(line for line in text.splitlines() if line.strip())
    delimiter = _sniff_delimiter(first_line)
    first_fields = next(csv.reader([first_line], delimiter=delimiter))
    if len(first_fields) > MAX_COLUMNS:
        raise ValidationFailed(
            f"the first line has {len(first_fields):,} fields; a bar file has at most {MAX_COLUMNS} columns "
            "(time, open, high, low, close, volume and a few extra): check the delimiter and the file"
        )
    if all(_looks_numeric(f) for f in first_fields if f.strip()):
        return _parse_headerless(text, delimiter, first_fields)
    columns = [_normalise(f) for f in first_fields]
    if columns[0] == "price":
        return _parse_yfinance_download(text, delimiter, columns)
    return _parse_with_header(text, delimiter, columns)


def _parse_yfinance_download(text: str, delimiter: str, columns: list[str]) -> ParsedCsv:
    """``yf.download(...).to_csv()``: a ``Price,...`` header, then ``Ticker,...`` and ``Date,,,`` lines."""
    lines = text.splitlines()
    extra = [line for line in lines[1:3] if _normalise(line.split(delimiter, 1)[0]) in ("ticker", "date", "datetime")]
    if not extra:
        return _parse_with_header(text, delimiter, columns)
    time_name = _normalise(extra[-1].split(delimiter, 1)[0]) if len(extra) == 2 else "date"
    body = "\n".join([lines[0], *lines[1 + len(extra) :]])
    parsed = _parse_with_header(body, delimiter, [time_name, *columns[1:]])
    parsed.format = "yahoo"
    parsed.header_lines += len(extra)
    parsed.notes.append("yfinance download layout: the Ticker and Date header lines were skipped")
    return parsed


def _read_table(text: str, delimiter: str, header: bool, names: list[str] | None = None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas only warns when data rows are wider than the header, and drops the extra fields.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=delimiter,
                header=0 if header else None,
                names=names,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                index_col=False,
                engine="c",
            )
    except pd.errors.ParserWarning:
        raise ValidationFailed(f"the CSV is malformed: {_first_wide_line(text, delimiter)}") from None
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).replace("Error tokenizing data. C error: ", "")
        raise ValidationFailed(f"the CSV is malformed: {message.strip()}") from None
    return frame.fillna("")


def _first_wide_line(text: str, delimiter: str) -> str:
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    width = len(next(rows))
    for line, fields in enumerate(rows, start=2):
        if len(fields) > width:
            return f"Expected {width} fields in line {line}, saw {len(fields)}"
    return "data rows have more fields than the header"


def _parse_headerless(text: str, delimiter: str, first_fields: list[str]) -> ParsedCsv:
    width = len(first_fields)
    if width == len(BINANCE_COLUMNS):
        names, fmt = list(BINANCE_COLUMNS), "binance"
    elif width >= 5:
        names = ["timestamp", "open", "high", "low", "close", "volume"][:width]
        names += [f"extra_{i}" for i in range(width - len(names))]
        fmt = "plain"
        if width > 6:
            raise ValidationFailed(
                f"the file has no header and {width} columns; add a header line such as "
                "'timestamp,open,high,low,close,volume' (Binance klines have exactly 12 columns)"
            )
    else:
        raise ValidationFailed(
            f"the file has no header and only {width} columns; expected at least timestamp,open,high,low,close"
        )
    frame = _read_table(text, delimiter, header=False, names=names)
    return _build(frame, fmt, header_lines=0, mapping=_map_columns(names, fmt))


def _detect_format(columns: list[str]) -> str:
    names = set(columns)
    if {"ticker", "per", "date", "time"} <= names:
        return "stooq"
    if (
        names
        & {
            "close_time",
            "quote_volume",
            "quote_asset_volume",
            "taker_buy_base_volume",
            "taker_buy_base_asset_volume",
            "number_of_trades",
        }
        or "open_time" in names
    ):
        return "binance"
    if names & {"adj_close", "adjclose", "dividends", "stock_splits", "capital_gains"} or "datetime" in names:
        return "yahoo"
    if names & {"tickvol", "spread"}:
        return "metatrader"
    if "date" in names and names <= {"date", "time", "open", "high", "low", "close", "volume", "openint"}:
        return "stooq"
    return "plain"


def _map_columns(columns: list[str], fmt: str) -> dict[str, str]:
    """Map our field names to the file's columns; refuse missing and unknown columns."""
    mapping: dict[str, str] = {}
    if {"date", "time"} <= set(columns) and not {"timestamp", "datetime"} & set(columns):
        mapping["date"], mapping["clock"] = "date", "time"
    else:
        time_column = next((c for c in TIME_ALIASES if c in columns), None)
        if time_column is not None:
            mapping["timestamp"] = time_column
    for name, aliases in FIELD_ALIASES.items():
        found = next((c for c in aliases if c in columns), None)
        if found is not None:
            mapping[name] = found
    if "tickvol" in columns:
        mapping["tick_volume"] = "tickvol"
    missing = [n for n in ("timestamp", "open", "high", "low", "close") if n not in mapping]
    if "date" in mapping:
        missing = [n for n in missing if n != "timestamp"]
    if missing:
        raise ValidationFailed(
            f"missing column(s): {', '.join(missing)}; found {', '.join(columns)}. A bar CSV needs "
            "timestamp (or date), open, high, low, close and optionally volume"
        )
    used = set(mapping.values())
    # A nameless column is what a trailing delimiter on every line produces; it holds nothing.
    unknown = [c for c in columns if c and c not in used and c not in IGNORED_COLUMNS and not c.startswith("extra_")]
    if unknown:
        raise ValidationFailed(
            f"unexpected column(s): {', '.join(unknown)}; expected timestamp,open,high,low,close,volume "
            f"(known extra columns such as adj_close, dividends or Binance's close_time are ignored)"
        )
    return mapping


def _parse_with_header(text: str, delimiter: str, columns: list[str]) -> ParsedCsv:
    duplicated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicated:
        raise ValidationFailed(f"column(s) named twice in the header: {', '.join(duplicated)}")
    fmt = _detect_format(columns)
    mapping = _map_columns(columns, fmt)
    frame = _read_table(text, delimiter, header=True)
    frame.columns = pd.Index(columns)
    return _build(frame, fmt, header_lines=1, mapping=mapping)


def _build(frame: pd.DataFrame, fmt: str, header_lines: int, mapping: dict[str, str]) -> ParsedCsv:
    notes: list[str] = []
    rows = np.arange(1, len(frame) + 1, dtype=np.int64)
    cells = {name: frame[column].str.strip() for name, column in mapping.items()}
    price_names = [n for n in ("open", "high", "low", "close") if n in cells]
    is_null = {name: cells[name].str.lower().isin(NULL_MARKERS).to_numpy() for name in price_names}
    blank_row = np.logical_and.reduce([frame[c].str.strip().eq("").to_numpy() for c in frame.columns])
    empty_prices = np.logical_and.reduce(list(is_null.values())) & ~blank_row
    keep = ~(blank_row | empty_prices)
    if empty_prices.any():
        notes.append(f"skipped {int(empty_prices.sum())} row(s) with no prices (e.g. Yahoo 'null' rows)")
    if not keep.any():
        raise ValidationFailed("the file has a header but no data rows")
    cells = {name: series[keep] for name, series in cells.items()}
    rows = rows[keep]

    problems = ProblemList()
    ts, time_note = parse_timestamps(cells, rows, problems)
    if time_note:
        notes.append(time_note)
    values: dict[str, NDArray[np.float64]] = {
        name: _parse_numbers(cells[name], rows, name, problems) for name in price_names
    }
    if "volume" in cells:
        values["volume"] = _parse_numbers(cells["volume"], rows, "volume", problems, null_is_zero=True)
        if "tick_volume" in cells and not values["volume"].any():
            values["volume"] = _parse_numbers(cells["tick_volume"], rows, "volume", problems, null_is_zero=True)
            notes.append("real volume is all zero (as for FX in MetaTrader); tick volume stored instead")
    else:
        values["volume"] = np.zeros(len(rows))
        notes.append("the file has no volume column; volume stored as 0")
    problems.raise_if_any(header_lines)
    bars = BarArrays.from_columns(ts=ts, **values)
    return ParsedCsv(bars=bars, rows=rows, format=fmt, header_lines=header_lines, notes=notes)


def _parse_numbers(
    cells: pd.Series, rows: NDArray[np.int64], name: str, problems: ProblemList, null_is_zero: bool = False
) -> NDArray[np.float64]:
    numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    unreadable = np.isnan(numbers) & ~cells.str.lower().isin({"nan"}).to_numpy()
    if null_is_zero:
        blank = cells.str.lower().isin(NULL_MARKERS).to_numpy()
        numbers[blank] = 0.0
        unreadable &= ~blank
    raw = cells.to_numpy()
    problems.add_mask(unreadable, rows, name, lambda i: f"{name} '{raw[i] or '(empty)'}' is not a number")
    return numbers


def shift_to_week_start(ts_us: NDArray[np.int64]) -> NDArray[np.int64]:
    """Move each day to the Monday of its ISO week (Stooq labels weeks by their last trading day)."""
    days = ts_us // DAY_US
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    return (days - weekday) * DAY_US


def adjust_for_interval(parsed: ParsedCsv, interval: Interval) -> ParsedCsv:
    """Apply a format's labelling convention once the interval is known."""
    if parsed.format == "stooq" and interval is Interval.w1:
        bars = parsed.bars
        shifted = BarArrays(shift_to_week_start(bars.ts), bars.open, bars.high, bars.low, bars.close, bars.volume)
        note = "Stooq labels weeks by their last trading day; stored at the Monday 00:00 UTC that starts each week"
        return ParsedCsv(shifted, parsed.rows, parsed.format, parsed.header_lines, [*parsed.notes, note])
    return parsed
