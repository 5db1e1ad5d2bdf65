"""Helpers shared by the benchmark scripts: timing, tables, the closing JSON line."""

import json
import statistics
import time
from collections.abc import Callable
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
