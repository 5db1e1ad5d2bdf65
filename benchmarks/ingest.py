"""Ingest and range-read speed for 1,000,000 daily bars: quantdesk next to the raw drivers, same run.

    make bench                      # or: .venv/bin/python benchmarks/ingest.py [--rows N] [--runs R]

PostgreSQL comes from QUANTDESK_BENCH_POSTGRES_URL (else QUANTDESK_TEST_POSTGRES_URL, else the local
server); a scratch database ``quantdesk_bench`` is created on it and dropped afterwards. SQLite is a
file in a temporary directory. Every timing is the best of ``--runs``; peers get their input rows
prepared outside the timer, which makes them harder to reach, not easier.
"""

import argparse
import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from tests.factories import bars_as_csv

from benchmarks.common import best_of, console, print_figures, print_table
from quantdesk.core import migrate
from quantdesk.core.db import SQLITE_PRAGMAS, create_engine, create_sessionmaker
from quantdesk.core.types import from_epoch_us, to_epoch_us
from quantdesk.market import bar_store, ingest
from quantdesk.market.bar_store import BarQuery
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval
from quantdesk.market.models import Instrument
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars
from quantdesk.market.schemas import InstrumentCreate
from quantdesk.market.service import ensure_instrument

SYMBOL = "BENCH"
READ_SQL = "SELECT ts, open, high, low, close, volume FROM bars WHERE instrument_id = 1 AND interval = '1d' ORDER BY ts"
UPSERT_SET = (
    "open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume"
)


def make_bars(rows: int) -> BarArrays:
    start = to_epoch_us(datetime(1900, 1, 1, tzinfo=UTC))
    return generate_bars(SeriesSpec(), bar_times(start, rows, Interval.d1, weekdays_only=False), seed=42)


# --- databases --------------------------------------------------------------------------------


def postgres_server_url() -> str:
    return (
        os.environ.get("QUANTDESK_BENCH_POSTGRES_URL")
        or os.environ.get("QUANTDESK_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_postgres(name: str = "quantdesk_bench") -> str:
    with psycopg.connect(libpq_dsn(postgres_server_url()), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server_url()).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres(name: str = "quantdesk_bench") -> None:
    with psycopg.connect(libpq_dsn(postgres_server_url()), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_bars(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
            connection.execute("TRUNCATE bars")
    else:
        with sqlite3.connect(make_url(url).database or "") as connection:
            connection.execute("DELETE FROM bars")


async def create_instrument(url: str) -> int:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        instrument = await ensure_instrument(session, InstrumentCreate(symbol=SYMBOL))
        await session.commit()
        instrument_id = instrument.id
    await engine.dispose()
    return instrument_id


# --- ingest -----------------------------------------------------------------------------------


def service_ingest(url: str, bars: BarArrays) -> Callable[[], None]:
    async def run() -> None:
        engine = create_engine(url)
        async with create_sessionmaker(engine)() as session:
            instrument = await session.get(Instrument, 1)
            assert instrument is not None
            await ingest.store_bars(session, instrument, bars, Interval.d1)
            await session.commit()
        await engine.dispose()

    return lambda: asyncio.run(run())


def raw_postgres_copy(url: str, bars: BarArrays) -> Callable[[], None]:
    rows = [
        (from_epoch_us(ts), o, h, lo, c, v)
        for ts, o, h, lo, c, v in zip(*(column.tolist() for column in bars.columns()), strict=True)
    ]
    upsert = (
        "INSERT INTO bars (instrument_id, interval, ts, open, high, low, close, volume) "
        "SELECT 1, '1d', ts, open, high, low, close, volume FROM staging "
        f"ON CONFLICT (instrument_id, interval, ts) DO UPDATE SET {UPSERT_SET}"
    )

    def run() -> None:
        with psycopg.connect(libpq_dsn(url)) as connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE staging (ts timestamptz, open float8, high float8, low float8, "
                "close float8, volume float8) ON COMMIT DROP"
            )
            with cursor.copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "float8", "float8", "float8", "float8", "float8"])
                for row in rows:
                    copy.write_row(row)
            cursor.execute(upsert)
            connection.commit()

    return run


def raw_sqlite_executemany(url: str, bars: BarArrays) -> Callable[[], None]:
    rows = list(zip([1] * len(bars), ["1d"] * len(bars), *(column.tolist() for column in bars.columns()), strict=True))
    upsert = (
        "INSERT INTO bars (instrument_id, interval, ts, open, high, low, close, volume) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT (instrument_id, interval, ts) DO UPDATE SET {UPSERT_SET.replace('EXCLUDED', 'excluded')}"
    )
    path = make_url(url).database or ""

    def run() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            connection.execute(pragma)
        connection.execute("BEGIN")
        connection.executemany(upsert, rows)
        connection.execute("COMMIT")
        connection.close()

    return run


def measure_ingest(label: str, url: str, bars: BarArrays, raw: Callable[[], None], runs: int) -> dict[str, float]:
    n = len(bars)
    service = service_ingest(url, bars)
    first_service = best_of(runs, service, before=lambda: empty_bars(url))
    first_raw = best_of(runs, raw, before=lambda: empty_bars(url))
    reload_service = best_of(runs, service)
    reload_raw = best_of(runs, raw)
    return {
        f"{label}_service_first_load_rows_per_s": n / first_service,
        f"{label}_raw_first_load_rows_per_s": n / first_raw,
        f"{label}_first_load_ratio": first_raw / first_service,
        f"{label}_service_reload_rows_per_s": n / reload_service,
        f"{label}_raw_reload_rows_per_s": n / reload_raw,
        f"{label}_reload_ratio": reload_raw / reload_service,
    }


# --- reads ------------------------------------------------------------------------------------


def utc_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """What every reader must hand back: a DataFrame with a UTC DatetimeIndex."""
    if not isinstance(frame["ts"].dtype, pd.DatetimeTZDtype):
        frame["ts"] = pd.to_datetime(frame["ts"], unit="us", utc=True)
    return frame.set_index("ts")


def quantdesk_reader(url: str) -> Callable[[], pd.DataFrame]:
    async def run() -> pd.DataFrame:
        engine = create_engine(url)
        async with create_sessionmaker(engine)() as session:
            bars = await bar_store.read_bars(session, BarQuery(1, Interval.d1))
        await engine.dispose()
        return bars.to_frame()

    return lambda: asyncio.run(run())


def peer_readers(url: str) -> dict[str, Callable[[], pd.DataFrame]]:
    """The raw readers quantdesk is measured against (imported lazily: they are the bench extra)."""
    import adbc_driver_postgresql.dbapi
    import adbc_driver_sqlite.dbapi
    import connectorx as cx

    if url.startswith("postgresql"):
        dsn = libpq_dsn(url)

        def adbc() -> Any:
            return adbc_driver_postgresql.dbapi.connect(dsn)

        cx_url = dsn
        sync_url = url
    else:
        path = make_url(url).database or ""

        def adbc() -> Any:
            return adbc_driver_sqlite.dbapi.connect(path)

        cx_url = f"sqlite://{Path(path).resolve()}"
        sync_url = f"sqlite:///{path}"

    def with_adbc() -> pd.DataFrame:
        with adbc() as connection, connection.cursor() as cursor:
            cursor.execute(READ_SQL)
            return utc_frame(cursor.fetch_arrow_table().to_pandas())

    def with_connectorx() -> pd.DataFrame:
        frame: pd.DataFrame = cx.read_sql(cx_url, READ_SQL, return_type="pandas")
        return utc_frame(frame)

    def with_read_sql() -> pd.DataFrame:
        engine = create_sync_engine(sync_url)
        try:
            return utc_frame(pd.read_sql(READ_SQL, engine))
        finally:
            engine.dispose()

    return {"adbc": with_adbc, "connectorx": with_connectorx, "pandas_read_sql": with_read_sql}


def measure_reads(label: str, url: str, n: int, runs: int) -> dict[str, float]:
    ours = quantdesk_reader(url)
    frame = ours()
    assert len(frame) == n
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    figures = {f"{label}_read_rows_per_s": n / best_of(runs, ours)}
    # Peers run only after quantdesk's engine is disposed: ADBC and connectorx carry their own SQLite
    # library, which must never hold the file open beside the stdlib one (POSIX locks are per process).
    for name, reader in peer_readers(url).items():
        figures[f"{label}_read_{name}_rows_per_s"] = n / best_of(1 if name == "pandas_read_sql" else runs, reader)
    fastest_peer = max(
        v for k, v in figures.items() if k.startswith(f"{label}_read_") and k != f"{label}_read_rows_per_s"
    )
    figures[f"{label}_read_ratio_vs_fastest_raw"] = figures[f"{label}_read_rows_per_s"] / fastest_peer
    return figures


# --- HTTP -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(client: httpx.Client, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become healthy within {seconds:g} s")


def measure_http_csv(label: str, url: str, runs: int, rows: int = 100_000) -> dict[str, float]:
    """POST a 100,000-row CSV to a real server process and time the answer, end to end."""
    port = free_port()
    env = {**os.environ, "QUANTDESK_DATABASE_URL": url, "QUANTDESK_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    payload = bars_as_csv(generate_bars(SeriesSpec(), bar_times(0, rows, Interval.m1, False), 5)).encode()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            wait_until_healthy(client)
            client.post("/api/v1/instruments", json={"symbol": "CSVBENCH"})

            def upload() -> None:
                response = client.post(
                    "/api/v1/instruments/CSVBENCH/bars/csv", content=payload, headers={"content-type": "text/csv"}
                )
                assert response.status_code == 200, response.text

            first = best_of(1, upload)
            again = best_of(runs, upload)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        f"{label}_http_csv_100k_first_s": first,
        f"{label}_http_csv_100k_reload_s": again,
        f"{label}_http_csv_100k_rows_per_s": rows / first,
        "http_csv_megabytes": len(payload) / 1e6,
    }


# --- main -------------------------------------------------------------------------------------


def run_database(label: str, url: str, bars: BarArrays, runs: int) -> dict[str, float]:
    migrate.upgrade(url)
    asyncio.run(create_instrument(url))
    raw = raw_postgres_copy(url, bars) if label == "pg" else raw_sqlite_executemany(url, bars)
    console.print(f"[bold]{label}[/]: ingest {len(bars):,} bars")
    figures = measure_ingest(label, url, bars, raw, runs)
    console.print(f"[bold]{label}[/]: range reads")
    figures |= measure_reads(label, url, len(bars), runs)
    console.print(f"[bold]{label}[/]: 100,000-row CSV over HTTP")
    figures |= measure_http_csv(label, url, runs)
    return figures


def report(figures: dict[str, float], rows: int) -> None:
    ingest_rows = []
    for label, raw_name in (("pg", "psycopg binary COPY + upsert"), ("sqlite", "sqlite3 executemany upsert")):
        for phase in ("first_load", "reload"):
            ingest_rows.append(
                [
                    label,
                    phase.replace("_", " "),
                    figures[f"{label}_service_{phase}_rows_per_s"],
                    raw_name,
                    figures[f"{label}_raw_{phase}_rows_per_s"],
                    f"{figures[f'{label}_{phase}_ratio']:.0%}",
                ]
            )
    print_table(
        f"ingest {rows:,} daily bars (rows/s)",
        ["db", "phase", "quantdesk", "raw peer", "peer rows/s", "quantdesk/peer"],
        ingest_rows,
    )
    read_rows = []
    for label in ("pg", "sqlite"):
        read_rows.append(
            [
                label,
                figures[f"{label}_read_rows_per_s"],
                figures[f"{label}_read_adbc_rows_per_s"],
                figures[f"{label}_read_connectorx_rows_per_s"],
                figures[f"{label}_read_pandas_read_sql_rows_per_s"],
            ]
        )
    print_table(
        f"read {rows:,} bars into a UTC DataFrame (rows/s)",
        ["db", "quantdesk", "ADBC", "connectorx", "pandas.read_sql"],
        read_rows,
    )
    http_rows = [
        [
            label,
            figures[f"{label}_http_csv_100k_first_s"],
            figures[f"{label}_http_csv_100k_reload_s"],
            figures[f"{label}_http_csv_100k_rows_per_s"],
        ]
        for label in ("pg", "sqlite")
    ]
    print_table("100,000-row CSV upload over HTTP, end to end", ["db", "first (s)", "reload (s)", "rows/s"], http_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bars = make_bars(args.rows)
    figures: dict[str, Any] = {"rows": args.rows, "runs": args.runs}
    pg_url = fresh_postgres()
    try:
        figures |= run_database("pg", pg_url, bars, args.runs)
    finally:
        drop_postgres()
    with tempfile.TemporaryDirectory() as folder:
        figures |= run_database("sqlite", f"sqlite+aiosqlite:///{folder}/bench.db", bars, args.runs)
    report(figures, args.rows)
    print_figures({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})


if __name__ == "__main__":
    main()
