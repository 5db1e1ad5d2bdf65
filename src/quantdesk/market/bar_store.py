"""Bulk writes and range reads of bars, on each database's fastest path.

No ORM objects here: bars move as numpy columns. PostgreSQL ingests with binary ``COPY`` into a
session-private staging table and one ``INSERT ... ON CONFLICT``, and reads with binary ``COPY``
parsed by numpy. SQLite ingests with one ``executemany`` upsert in the caller's transaction and
reads with numpy straight from the driver's row iterator. Every write joins the caller's transaction.
"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.types import from_epoch_us
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval

PG_EPOCH_OFFSET_US = 946_684_800_000_000  # PostgreSQL counts timestamps from 2000-01-01
PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header-extension length
PG_COPY_TRAILER = b"\xff\xff"
BAR_FIELDS = ("open", "high", "low", "close", "volume")
# One row of binary COPY: field count, then (length, value) per column; all ours are 8 bytes wide.
PG_ROW = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8")]
    + [item for name in BAR_FIELDS for item in ((f"{name}_len", ">i4"), (name, ">f8"))]
)
COPY_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class BarQuery:
    """A range of one series. ``end_us`` is exclusive; ``after_us`` is a keyset cursor."""

    instrument_id: int
    interval: Interval
    start_us: int | None = None
    end_us: int | None = None
    after_us: int | None = None
    limit: int | None = None
    descending: bool = False


async def upsert_bars(session: AsyncSession, instrument_id: int, interval: Interval, bars: BarArrays) -> UpsertCounts:
    """Insert new bars and update changed ones; rows equal to what is stored are left alone."""
    if len(bars) == 0:
        return UpsertCounts(0, 0, 0)
    if session.get_bind().dialect.name == "postgresql":
        inserted, updated = await _pg_upsert(session, instrument_id, interval, bars)
    else:
        inserted, updated = await _sqlite_upsert(session, instrument_id, interval, bars)
    return UpsertCounts(inserted, updated, len(bars) - inserted - updated)


async def read_bars(session: AsyncSession, query: BarQuery) -> BarArrays:
    if session.get_bind().dialect.name == "postgresql":
        return await _pg_read(session, query)
    return await _sqlite_read(session, query)


# --- PostgreSQL -------------------------------------------------------------------------------

PG_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS bars_staging (
    ts timestamptz NOT NULL, open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL,
    close float8 NOT NULL, volume float8 NOT NULL
) ON COMMIT DELETE ROWS
"""
PG_UPSERT = """
WITH upserted AS (
    INSERT INTO bars (instrument_id, interval, ts, open, high, low, close, volume)
    SELECT %s, %s, ts, open, high, low, close, volume FROM bars_staging
    ON CONFLICT (instrument_id, interval, ts) DO UPDATE SET
        open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
        close = EXCLUDED.close, volume = EXCLUDED.volume
    WHERE (bars.open, bars.high, bars.low, bars.close, bars.volume)
        IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


def encode_pg_copy(bars: BarArrays) -> bytes:
    """The binary COPY stream of (ts, open, high, low, close, volume), built column-wise by numpy."""
    rows = np.empty(len(bars), dtype=PG_ROW)
    rows["fields"] = 6
    rows["ts_len"] = 8
    rows["ts"] = bars.ts - PG_EPOCH_OFFSET_US
    for name in BAR_FIELDS:
        rows[f"{name}_len"] = 8
        rows[name] = getattr(bars, name)
    return PG_COPY_HEADER + rows.tobytes() + PG_COPY_TRAILER


def decode_pg_copy(payload: bytes) -> BarArrays:
    """Parse a binary COPY stream of NOT NULL (timestamptz, 5 x float8) rows."""
    if not payload.startswith(PG_COPY_HEADER[:11]):
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(payload[15:19], "big")
    start = 19 + extension
    count = (len(payload) - start - len(PG_COPY_TRAILER)) // PG_ROW.itemsize
    rows = np.frombuffer(payload, dtype=PG_ROW, count=count, offset=start)
    return BarArrays.from_columns(
        ts=rows["ts"].astype(np.int64) + PG_EPOCH_OFFSET_US,
        **{name: rows[name].astype(np.float64) for name in BAR_FIELDS},
    )


async def _driver_connection(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _pg_upsert(session: AsyncSession, instrument_id: int, interval: Interval, bars: BarArrays) -> tuple[int, int]:
    payload = memoryview(encode_pg_copy(bars))
    driver = await _driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(PG_STAGING)
        await cursor.execute("TRUNCATE bars_staging")
        async with cursor.copy("COPY bars_staging FROM STDIN (FORMAT BINARY)") as copy:
            for offset in range(0, len(payload), COPY_CHUNK_BYTES):
                await copy.write(payload[offset : offset + COPY_CHUNK_BYTES])
        await cursor.execute(PG_UPSERT, (instrument_id, interval.value))
        row = await cursor.fetchone()
        await cursor.execute("TRUNCATE bars_staging")
    return int(row[0]), int(row[1])


def _pg_range_query(query: BarQuery) -> sql.Composed:
    conditions = [
        sql.SQL("instrument_id = {}").format(sql.Literal(query.instrument_id)),
        sql.SQL("interval = {}").format(sql.Literal(query.interval.value)),
    ]
    if query.start_us is not None:
        conditions.append(sql.SQL("ts >= {}").format(sql.Literal(from_epoch_us(query.start_us))))
    if query.end_us is not None:
        conditions.append(sql.SQL("ts < {}").format(sql.Literal(from_epoch_us(query.end_us))))
    if query.after_us is not None:
        op = "<" if query.descending else ">"
        conditions.append(sql.SQL("ts " + op + " {}").format(sql.Literal(from_epoch_us(query.after_us))))
    statement = sql.SQL("SELECT ts, open, high, low, close, volume FROM bars WHERE {} ORDER BY ts {}").format(
        sql.SQL(" AND ").join(conditions), sql.SQL("DESC" if query.descending else "ASC")
    )
    if query.limit is not None:
        statement += sql.SQL(" LIMIT {}").format(sql.Literal(query.limit))
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(statement)


async def _pg_read(session: AsyncSession, query: BarQuery) -> BarArrays:
    driver = await _driver_connection(session)
    chunks: list[bytes] = []
    async with driver.cursor() as cursor, cursor.copy(_pg_range_query(query)) as copy:
        async for chunk in copy:
            chunks.append(bytes(chunk))
    return decode_pg_copy(b"".join(chunks))


# --- SQLite -----------------------------------------------------------------------------------

SQLITE_UPSERT = """
INSERT INTO bars (instrument_id, interval, ts, open, high, low, close, volume)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (instrument_id, interval, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low,
    close = excluded.close, volume = excluded.volume
WHERE bars.open IS NOT excluded.open OR bars.high IS NOT excluded.high
    OR bars.low IS NOT excluded.low OR bars.close IS NOT excluded.close
    OR bars.volume IS NOT excluded.volume
"""
SQLITE_COUNT = "SELECT count(*) FROM bars WHERE instrument_id = ? AND interval = ?"


async def _sqlite_upsert(
    session: AsyncSession, instrument_id: int, interval: Interval, bars: BarArrays
) -> tuple[int, int]:
    connection = await session.connection()
    key = (instrument_id, interval.value)
    before = (await connection.exec_driver_sql(SQLITE_COUNT, key)).scalar_one()
    n = len(bars)
    rows = list(
        zip(
            [instrument_id] * n,
            [interval.value] * n,
            bars.ts.tolist(),
            *(getattr(bars, name).tolist() for name in BAR_FIELDS),
            strict=True,
        )
    )
    changed = (await connection.exec_driver_sql(SQLITE_UPSERT, rows)).rowcount
    after = (await connection.exec_driver_sql(SQLITE_COUNT, key)).scalar_one()
    inserted = int(after) - int(before)
    return inserted, int(changed) - inserted


def _sqlite_range_sql(query: BarQuery) -> tuple[str, list[Any]]:
    clauses = ["instrument_id = ?", "interval = ?"]
    params: list[Any] = [query.instrument_id, query.interval.value]
    if query.start_us is not None:
        clauses.append("ts >= ?")
        params.append(query.start_us)
    if query.end_us is not None:
        clauses.append("ts < ?")
        params.append(query.end_us)
    if query.after_us is not None:
        clauses.append("ts < ?" if query.descending else "ts > ?")
        params.append(query.after_us)
    # Fixed clauses only; every value is a bound parameter.
    where = " AND ".join(clauses)
    statement = (
        f"SELECT ts, open, high, low, close, volume FROM bars WHERE {where}"  # noqa: S608
        + (" ORDER BY ts DESC" if query.descending else " ORDER BY ts")
    )
    if query.limit is not None:
        statement += " LIMIT ?"
        params.append(query.limit)
    return statement, params


SQLITE_ROW = np.dtype([("ts", "<i8")] + [(name, "<f8") for name in BAR_FIELDS])


def _rows_to_bars(rows: Any) -> BarArrays:
    """Columns straight from a row iterator: numpy fills a structured array with no tuple list."""
    table = np.fromiter(rows, dtype=SQLITE_ROW)
    return BarArrays.from_columns(ts=table["ts"], **{name: table[name] for name in BAR_FIELDS})


def _sqlite_file_read(path: Path, statement: str, params: list[Any]) -> BarArrays:
    # The stdlib driver on purpose: a second SQLite library in the process (ADBC, connectorx)
    # would release this process's POSIX locks when it closes the file, and corrupt concurrency.
    connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
    try:
        return _rows_to_bars(connection.execute(statement, params))
    finally:
        connection.close()


async def _sqlite_read(session: AsyncSession, query: BarQuery) -> BarArrays:
    statement, params = _sqlite_range_sql(query)
    database = (await session.connection()).engine.url.database
    if database and database != ":memory:":
        # A worker thread with its own connection keeps a long read off the event loop and off
        # the session's connection; it sees committed data, which is what a range read serves.
        return await anyio.to_thread.run_sync(_sqlite_file_read, Path(database), statement, params)
    connection = await session.connection()
    result = await connection.exec_driver_sql(statement, tuple(params))
    return _rows_to_bars(iter(result.all()))


async def delete_series(session: AsyncSession, instrument_id: int, interval: Interval | None) -> int:
    statement = "DELETE FROM bars WHERE instrument_id = :iid"
    params: dict[str, Any] = {"iid": instrument_id}
    if interval is not None:
        statement += " AND interval = :interval"
        params["interval"] = interval.value
    result = await session.execute(text(statement), params)
    return int(result.rowcount)  # type: ignore[attr-defined]
