"""A quantdesk server on a scratch SQLite database holding ten years of daily bars, for HTTP benchmarks."""

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from tests.factories import bars_as_csv

from benchmarks.ingest import free_port, wait_until_healthy
from quantdesk.core.types import to_epoch_us
from quantdesk.market.intervals import Interval
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars

SYMBOL = "TENY"


@contextmanager
def serving_ten_years(timeout_s: float = 60.0) -> Iterator[httpx.Client]:
    """A client of a fresh server whose database holds TENY: 2,610 weekday bars from 2015 on."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        env = {**os.environ, "QUANTDESK_DATABASE_URL": url, "QUANTDESK_LOG_LEVEL": "WARNING"}
        subprocess.run([sys.executable, "-m", "quantdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
        start = to_epoch_us(datetime(2015, 1, 1, tzinfo=UTC))
        daily = generate_bars(SeriesSpec(), bar_times(start, 2_610, Interval.d1, True), 9)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "quantdesk", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout_s) as client:
                wait_until_healthy(client)
                client.post("/api/v1/instruments", json={"symbol": SYMBOL, "asset_class": "stock"})
                client.post(f"/api/v1/instruments/{SYMBOL}/bars/csv", content=bars_as_csv(daily).encode())
                yield client
        finally:
            server.terminate()
            server.wait(timeout=10)
