"""Why quantdesk talks to PostgreSQL through asyncpg: binary COPY in and out, psycopg 3 and asyncpg
side by side on the same 1,000,000 bars, in one run.

    .venv/bin/python -m benchmarks.pg_driver [--rows N] [--runs R]

Both drivers get the same numpy-built binary COPY buffer to write and hand back the same bytes to
parse, so the figures isolate the driver. libpq (psycopg) returns COPY data one row per call;
asyncpg reads the socket in large chunks.
"""

import argparse
import asyncio
import io
from collections.abc import Callable
from typing import Any

import asyncpg
import psycopg

from benchmarks.common import best_of, print_figures, print_table
from benchmarks.ingest import drop_postgres, fresh_postgres, libpq_dsn, make_bars
from quantdesk.market.bar_store import decode_pg_copy, encode_pg_copy

DB = "quantdesk_driver_bench"
TABLE = (
    "CREATE TABLE IF NOT EXISTS series "
    "(ts timestamptz, open float8, high float8, low float8, close float8, volume float8)"
)
READ = "SELECT ts, open, high, low, close, volume FROM series ORDER BY ts"


def psycopg_write(dsn: str, payload: bytes) -> Callable[[], None]:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as connection:
            await connection.execute("TRUNCATE series")
            async with connection.cursor() as cursor, cursor.copy("COPY series FROM STDIN (FORMAT BINARY)") as copy:
                await copy.write(payload)

    return lambda: asyncio.run(run())


def asyncpg_write(dsn: str, payload: bytes) -> Callable[[], None]:
    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        await connection.execute("TRUNCATE series")
        await connection.copy_to_table("series", source=io.BytesIO(payload), format="binary")
        await connection.close()

    return lambda: asyncio.run(run())


def psycopg_read(dsn: str) -> Callable[[], Any]:
    async def run() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn) as connection:
            chunks: list[bytes] = []
            async with connection.cursor() as cursor, cursor.copy(f"COPY ({READ}) TO STDOUT (FORMAT BINARY)") as copy:
                async for chunk in copy:
                    chunks.append(bytes(chunk))
        return decode_pg_copy(b"".join(chunks))

    return lambda: asyncio.run(run())


def asyncpg_read(dsn: str) -> Callable[[], Any]:
    async def run() -> Any:
        connection = await asyncpg.connect(dsn)
        chunks: list[bytes] = []

        async def collect(chunk: bytes) -> None:
            chunks.append(chunk)

        await connection.copy_from_query(READ, output=collect, format="binary")
        await connection.close()
        return decode_pg_copy(b"".join(chunks))

    return lambda: asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    payload = encode_pg_copy(make_bars(args.rows))
    dsn = libpq_dsn(fresh_postgres(DB))
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(TABLE)
        figures: dict[str, float] = {}
        for name, write, read in (("psycopg", psycopg_write, psycopg_read), ("asyncpg", asyncpg_write, asyncpg_read)):
            figures[f"{name}_copy_in_rows_per_s"] = args.rows / best_of(args.runs, write(dsn, payload))
            figures[f"{name}_copy_out_rows_per_s"] = args.rows / best_of(args.runs, read(dsn))
    finally:
        drop_postgres(DB)
    figures["asyncpg_vs_psycopg_copy_out_ratio"] = (
        figures["asyncpg_copy_out_rows_per_s"] / figures["psycopg_copy_out_rows_per_s"]
    )
    figures["asyncpg_vs_psycopg_copy_in_ratio"] = (
        figures["asyncpg_copy_in_rows_per_s"] / figures["psycopg_copy_in_rows_per_s"]
    )
    print_table(
        f"binary COPY of {args.rows:,} bars (rows/s)",
        ["driver", "COPY in", "COPY out + numpy parse"],
        [[n, figures[f"{n}_copy_in_rows_per_s"], figures[f"{n}_copy_out_rows_per_s"]] for n in ("psycopg", "asyncpg")],
    )
    print_figures({"rows": args.rows, **{k: round(v, 3) for k, v in figures.items()}})


if __name__ == "__main__":
    main()
