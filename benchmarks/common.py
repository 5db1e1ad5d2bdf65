"""Helpers shared by the benchmark scripts: timing, tables, the closing JSON line."""

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of one process, from /proc (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime and stime: fields 14 and 15


def _tree(pid: int) -> Iterator[int]:
    yield pid
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            yield from _tree(int(child))


def tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds so far of a process and its descendants (a server's supervisor and workers), by pid;
    empty where /proc is not there. Subtract two readings to meter a stretch of time."""
    if not Path("/proc").is_dir():
        return {}
    try:
        return {each: _cpu_s(each) for each in _tree(pid)}
    except OSError:  # the tree changed while read
        return {}


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process of this machine (its backends among them), by pid."""
    if not Path("/proc").is_dir():
        return {}
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found[int(entry.name)] = _cpu_s(int(entry.name))
            except OSError:
                continue
    return found


def cpu_used_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings, by the processes seen in the second (a process started
    in between counts from zero)."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())
