"""Helpers shared by the benchmark scripts: timing, tables, the closing JSON line."""

import contextlib
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

console = Console(width=130)


def best_of(runs: int, work: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    """The fastest of ``runs`` timings of ``work`` in seconds; ``before`` runs untimed each time."""
    timings = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings)


def median_of(timings: list[float]) -> float:
    return statistics.median(timings)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(
            *(
                f"{v:,.0f}" if isinstance(v, float) and v > 100 else f"{v:.2f}" if isinstance(v, float) else str(v)
                for v in row
            )
        )
    console.print(table)


def print_figures(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object with every figure."""
    print(json.dumps(figures, sort_keys=True), flush=True)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds so far of a process and its descendants (a server's supervisor and workers), by pid.
    Subtract two readings to meter a stretch of time."""
    found: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                found[process.pid] = _cpu_s(process)
    except psutil.NoSuchProcess:
        pass
    return found


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process of this machine (its backends among them), by pid."""
    found: dict[int, float] = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                found[process.pid] = _cpu_s(process)
    return found


def cpu_used_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings, by the processes seen in the second (a process started
    in between counts from zero)."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())
