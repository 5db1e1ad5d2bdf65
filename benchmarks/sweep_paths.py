"""The sweeps users run, timed whole: `quantdesk sweep` as a process, and the API's sweep job from POST to
done, for the built-in sma_cross and the same strategy written as a rule. Used by benchmarks/backtest.py,
which runs vectorbt's side in the same run.

The grid is the issue's: fast 5..100 step 5 x slow 20..400 step 20 (fast < slow: 355 combinations) on
100,000 minute bars of SYN.
"""

import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from tests.factories import bars_as_csv

from benchmarks.ingest import free_port, wait_until_healthy
from quantdesk.market.bars import BarArrays

SYMBOL = "SYN"
GRID = {"fast": "5:100:5", "slow": "20:400:20"}
SWEEP_COMMAND = (
    "sweep",
    SYMBOL,
    "--interval",
    "1m",
    "--strategy",
    "sma_cross",
    "--fast",
    "5:100:5",
    "--slow",
    "20:400:20",
)
GOLDEN_CROSS = {
    "name": "golden_cross",
    "params": {"fast": {"default": 20, "min": 1, "max": 10000}, "slow": {"default": 50, "min": 2, "max": 10000}},
    "entry": "crosses_above(sma(close, fast), sma(close, slow))",
    "exit": "crosses_below(sma(close, fast), sma(close, slow))",
    "constraints": ["fast < slow"],
}
RUNS = 5
# What `quantdesk sweep` imports before its first query, then that query: start-up on its own.
STARTUP = """
import asyncio, sys, time
from quantdesk.cli import main
from quantdesk.backtest import sweep, sweeps, strategy_service
from quantdesk.analytics import service
from quantdesk.core.config import get_settings
from quantdesk.core.db import create_engine
from sqlalchemy import text

async def first_query():
    engine = create_engine(get_settings().database_url)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT count(*) FROM instruments"))
    await engine.dispose()

asyncio.run(first_query())
"""


def environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QUANTDESK_DATABASE_URL": f"sqlite:///{folder}/sweep.db",
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "NUMBA_CACHE_DIR": str(folder / "numba"),
    }


def quantdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", *args], env=env, check=True, capture_output=True, text=True
    )


def prepare(folder: Path, bars: BarArrays) -> dict[str, str]:
    """A scratch database holding SYN's 100,000 minute bars, and an admin's key."""
    env = environment(folder)
    quantdesk("db", "upgrade", env=env)
    csv = folder / "syn.csv"
    csv.write_text(bars_as_csv(bars))
    quantdesk("ingest", str(csv), "--symbol", SYMBOL, "--interval", "1m", env=env)
    key = quantdesk("users", "create", "bench", "--admin", env=env).stdout.strip().split()[-1]
    return {**env, "BENCH_KEY": key}


def timed_process(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def cli_sweep(env: dict[str, str]) -> dict[str, float]:
    """The whole `quantdesk sweep` process, start to exit, numba's cache warm (one run before)."""
    command = [sys.executable, "-m", "quantdesk", *SWEEP_COMMAND]
    timed_process(command, env)
    whole = [timed_process(command, env) for _ in range(RUNS)]
    startup = [timed_process([sys.executable, "-c", STARTUP], env) for _ in range(RUNS)]
    return {"cli_sweep_process_s": statistics.median(whole), "cli_startup_s": statistics.median(startup)}


def api_sweeps(env: dict[str, str]) -> dict[str, float]:
    """Sweep jobs on a warm server, from POST to done (the job's finished - created), median of RUNS."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    headers = {"Authorization": f"Bearer {env['BENCH_KEY']}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers=headers) as client:
            wait_until_healthy(client)
            created = client.post("/api/v1/strategies", json=GOLDEN_CROSS)
            created.raise_for_status()
            figures = {}
            for label, strategy in (("builtin", "sma_cross"), ("rule", "golden_cross")):
                job_seconds(client, strategy)  # warm: the server's first sweep loads and compiles
                seconds = statistics.median(job_seconds(client, strategy) for _ in range(RUNS))
                figures[f"api_sweep_{label}_s"] = seconds
                figures[f"api_sweep_{label}_combos_per_s"] = 355 / seconds
            return figures
    finally:
        server.terminate()
        server.wait(timeout=10)


def job_seconds(client: httpx.Client, strategy: str) -> float:
    body = {"symbol": SYMBOL, "interval": "1m", "strategy": strategy, "grid": GRID}
    queued = client.post("/api/v1/sweeps", json=body)
    queued.raise_for_status()
    url = f"/api/v1/sweeps/{queued.json()['id']}?rows=0"
    while (job := client.get(url).json())["status"] in ("queued", "running"):
        time.sleep(0.02)
    if job["status"] != "done" or job["total"] != 355:
        raise RuntimeError(f"sweep ended {job['status']}: {job['error']}")
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds()
