"""Turn service results into response schemas and fast JSON/CSV bodies."""

import io
from typing import Literal

import numpy as np
import orjson
from fastapi import Response
from numpy.typing import NDArray

from quantdesk.market.bars import BarArrays
from quantdesk.market.ingest import IngestReport
from quantdesk.market.schemas import IngestResult, InstrumentDetail, InstrumentRead, SeriesRead
from quantdesk.market.service import BarPageResult, InstrumentView

BAR_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def instrument_schema(view: InstrumentView) -> InstrumentRead:
    read = InstrumentRead.model_validate(view.instrument)
    if view.latest is not None:
        read.last_price = view.latest.close
        read.last_price_at = view.latest.ts
        read.last_price_interval = view.latest.interval
    return read


def detail_schema(view: InstrumentView) -> InstrumentDetail:
    base = instrument_schema(view)
    series = [SeriesRead(interval=s.interval, first=s.first, last=s.last, count=s.count) for s in view.series or []]
    return InstrumentDetail(**base.model_dump(), series=series)


def ingest_schema(report: IngestReport) -> IngestResult:
    return IngestResult.model_validate(report.__dict__)


def iso_timestamps(ts_us: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings with a Z, to the second unless a timestamp has a fraction."""
    unit: Literal["s", "us"] = "s" if not (ts_us % 1_000_000).any() else "us"
    instants: NDArray[np.datetime64] = ts_us.astype("datetime64[us]")
    text = np.datetime_as_string(instants, unit=unit)
    return [value + "Z" for value in text.tolist()]


def bars_csv(bars: BarArrays) -> str:
    out = io.StringIO()
    out.write(",".join(BAR_COLUMNS) + "\n")
    columns = [iso_timestamps(bars.ts), *(column.tolist() for column in bars.columns()[1:])]
    for row in zip(*columns, strict=True):
        out.write(",".join(map(str, row)))
        out.write("\n")
    return out.getvalue()


def bars_response(page: BarPageResult, as_csv: bool) -> Response:
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
    if as_csv:
        return Response(bars_csv(page.bars), media_type="text/csv; charset=utf-8", headers=headers)
    columns = [iso_timestamps(page.bars.ts), *(column.tolist() for column in page.bars.columns()[1:])]
    records = [dict(zip(BAR_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]
    body = {
        "symbol": page.instrument.symbol,
        "interval": page.interval.value,
        "count": len(records),
        "bars": records,
        "next_cursor": page.next_cursor,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
