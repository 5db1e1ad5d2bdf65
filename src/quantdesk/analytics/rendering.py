"""Enriched tables as JSON (columns + rows, or records) and CSV; NaN becomes null / empty."""

import io

import numpy as np
import orjson
import pandas as pd
from fastapi import Response

from quantdesk.analytics.service import EnrichedResult
from quantdesk.market.rendering import iso_timestamps


def _timestamps(table: pd.DataFrame) -> list[str]:
    micros = pd.DatetimeIndex(table.index).as_unit("us").asi8
    return iso_timestamps(np.asarray(micros))


def table_columns(table: pd.DataFrame) -> list[str]:
    return ["timestamp", *map(str, table.columns)]


def table_rows(table: pd.DataFrame) -> list[list[object]]:
    values = table.astype(np.float64).to_numpy().astype(object)
    values[~np.isfinite(table.to_numpy(dtype=np.float64))] = None
    cells: list[list[object]] = values.tolist()
    return [[stamp, *row] for stamp, row in zip(_timestamps(table), cells, strict=True)]


def enriched_response(result: EnrichedResult, orient: str, as_csv: bool) -> Response:
    table = result.table
    if as_csv:
        out = io.StringIO()
        framed = table.copy()
        framed.insert(0, "timestamp", _timestamps(table))
        framed.to_csv(out, index=False, na_rep="")
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    head: dict[str, object] = {
        "symbol": result.series.instrument.symbol,
        "interval": result.series.interval.value,
        "frequency": result.series.frequency.value if result.series.frequency else None,
    }
    columns, rows = table_columns(table), table_rows(table)
    body: dict[str, object]
    if orient == "records":
        body = {**head, "records": [dict(zip(columns, row, strict=True)) for row in rows]}
    else:
        body = {**head, "columns": columns, "rows": rows}
    return Response(orjson.dumps(body), media_type="application/json")
