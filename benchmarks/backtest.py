"""Backtest and sweep speed, quantdesk next to vectorbt and backtesting.py, in one run.

    .venv/bin/python -m benchmarks.backtest [--subset N]

The peers live in their own environment (benchmarks/.env-peers, created on first run with pip; they are
not quantdesk dependencies) and run in a subprocess on the same bars, saved to .npz files:
- one sma_cross(50, 200) backtest on 1,000,000 bars: quantdesk with its trade list and full metrics, vectorbt
  with and without stats(); compilation is timed separately;
- the sweep fast 5..100 step 5 x slow 20..400 step 20 (fast < slow, 355 combinations) on 100,000 bars, as
  combinations per second; backtesting.py runs a subset and is extrapolated (printed as such);
- first use of `quantdesk backtest` in a freshly installed environment with an empty numba cache, and again,
  on ten years of daily bars and on 200,000 bars (plain Python, nothing to compile) and on 500,000 bars
  (compiled);
- the sweeps users run (benchmarks/sweep_paths.py), on the same grid over 100,000 minute bars: the whole
  `quantdesk sweep` process against vectorbt's whole process (both compile caches warm), start-up on its
  own, and the API's sweep job from POST to done for sma_cross and for the same strategy written as a rule.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tests.factories import bars_as_csv

from benchmarks import sweep_paths
from benchmarks.common import best_of, print_figures, print_table
from quantdesk.backtest import strategies, sweep
from quantdesk.backtest.engine import Costs
from quantdesk.backtest.service import simulate
from quantdesk.core.types import to_epoch_us
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars

PEERS = Path(__file__).parent / ".env-peers"
PEER_PACKAGES = ("vectorbt", "backtesting")


def synthetic(rows: int, seed: int) -> BarArrays:
    start = to_epoch_us(datetime(1900, 1, 1, tzinfo=UTC))
    return generate_bars(SeriesSpec(annual_volatility=0.3), bar_times(start, rows, Interval.d1, False), seed)


def save(bars: BarArrays, path: Path) -> None:
    np.savez(path, ts=bars.ts, open=bars.open, high=bars.high, low=bars.low, close=bars.close, volume=bars.volume)


def peer_python() -> Path:
    python = PEERS / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return python


def quantdesk_single(frame: pd.DataFrame) -> dict[str, float]:
    strategy, params = strategies.resolve("sma_cross", {"fast": 50, "slow": 200})
    started = time.perf_counter()
    # This process has imported the sweep and with it the compiled kernels: this compiles or loads the cache.
    simulate(frame.iloc[:1000], strategy, params, Costs(), False, 252)
    first = time.perf_counter() - started
    run = best_of(3, lambda: simulate(frame, strategy, params, Costs(), False, 252))
    return {"quantdesk_first_call_s": first, "quantdesk_single_s": run}


def quantdesk_sweep(frame: pd.DataFrame) -> dict[str, float]:
    plan = sweep.build_sweep(strategies.STRATEGIES["sma_cross"], {"fast": "5:100:5", "slow": "20:400:20"})
    sweep.run_sweep(frame.iloc[:1000], plan, Costs(), False, 252)
    elapsed = best_of(3, lambda: sweep.run_sweep(frame, plan, Costs(), False, 252))
    return {"quantdesk_sweep_s": elapsed, "quantdesk_combos_per_s": len(plan.combinations) / elapsed}


def fresh_environment(folder: Path) -> tuple[Path, float]:
    """A new virtual environment with quantdesk and only its runtime dependencies, installed from uv.lock
    the way `make run` installs them; falls back to this interpreter's environment without uv."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        return Path(sys.executable).parent, math.nan
    started = time.perf_counter()
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(folder / "venv")}
    subprocess.run(
        [str(uv), "sync", "--frozen", "--compile-bytecode", "--quiet"],
        env=env,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return folder / "venv" / "bin", time.perf_counter() - started


def cli_first_use(folder: Path) -> dict[str, float]:
    """`quantdesk backtest` in fresh processes of a fresh environment: first with an empty numba cache, then
    again; on ten years of daily bars and 200,000 bars (plain Python) and on 500,000 bars (compiled)."""
    bin_dir, install_s = fresh_environment(folder)
    env = {
        **os.environ,
        "QUANTDESK_DATABASE_URL": f"sqlite:///{folder}/cli.db",
        "NUMBA_CACHE_DIR": str(folder / "numba"),
    }
    quantdesk = [str(bin_dir / "quantdesk")]
    subprocess.run([*quantdesk, "db", "upgrade"], env=env, check=True, capture_output=True)
    figures = {"cli_environment_install_s": install_s}
    for label, rows in (("", 2_520), ("_200k_bars", 200_000), ("_500k_bars", 500_000)):
        csv = folder / f"bars{label}.csv"
        csv.write_text(bars_as_csv(synthetic(rows, 1)))
        symbol = f"CLI{rows}"
        subprocess.run([*quantdesk, "ingest", str(csv), "--symbol", symbol], env=env, check=True, capture_output=True)
        command = [*quantdesk, "backtest", symbol, "--fast", "50", "--slow", "200", "--json"]
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            timings.append(time.perf_counter() - started)
        figures[f"cli{label}_first_use_s"] = timings[0]
        figures[f"cli{label}_afterwards_s"] = min(timings[1:])
    return figures


def minutes(rows: int, seed: int) -> BarArrays:
    start = to_epoch_us(datetime(2020, 1, 1, tzinfo=UTC))
    return generate_bars(SeriesSpec(annual_volatility=0.3), bar_times(start, rows, Interval.m1, False), seed)


def user_paths(root: Path, bars: BarArrays) -> dict[str, float]:
    """The sweep as users run it, quantdesk and vectorbt side by side, each as a whole process."""
    folder = root / "paths"
    folder.mkdir()
    env = sweep_paths.prepare(folder, bars)
    figures = sweep_paths.cli_sweep(env) | sweep_paths.api_sweeps(env)
    peer = [str(peer_python()), str(Path(__file__).parent / "peers_backtest.py")]
    sweep_paths.timed_process([*peer, "--whole-sweep", str(root / "sweep.npz")], dict(os.environ))  # warm cache
    whole = [sweep_paths.timed_process([*peer, "--whole-sweep", str(root / "sweep.npz")], dict(os.environ))]
    whole += [sweep_paths.timed_process([*peer, "--whole-sweep", str(root / "sweep.npz")], dict(os.environ))]
    startup = [
        sweep_paths.timed_process([*peer, "--startup", str(root / "sweep.npz")], dict(os.environ)) for _ in range(3)
    ]
    figures["vectorbt_sweep_process_s"] = statistics.median(whole)
    figures["vectorbt_startup_s"] = statistics.median(startup)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subset", type=int, default=10, help="backtesting.py combinations to time")
    parser.add_argument("--paths-only", action="store_true", help="only the sweeps users run (and vectorbt's)")
    args = parser.parse_args()
    # The sweep's bars are minutes, as `quantdesk sweep SYN --interval 1m` reads them; every sweep figure,
    # quantdesk's and the peers', is on these same bars.
    single, swept = synthetic(1_000_000, 7), minutes(100_000, 8)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save(single, root / "single.npz")
        save(swept, root / "sweep.npz")
        figures = user_paths(root, swept)
        if not args.paths_only:
            figures |= quantdesk_single(single.to_frame()) | quantdesk_sweep(swept.to_frame()) | cli_first_use(root)
        peers = subprocess.run(
            [
                str(peer_python()),
                str(Path(__file__).parent / "peers_backtest.py"),
                str(root / "single.npz"),
                str(root / "sweep.npz"),
                str(0 if args.paths_only else args.subset),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        figures |= json.loads(peers.stdout.strip().splitlines()[-1])
    figures |= path_ratios(figures)
    if args.paths_only:
        report_paths(figures)
        print_figures({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()})
        return
    figures["single_speedup_vs_vectorbt_stats"] = (
        figures["vectorbt_single_with_stats_s"] / figures["quantdesk_single_s"]
    )
    figures["single_speedup_vs_vectorbt_portfolio"] = (
        figures["vectorbt_single_portfolio_s"] / figures["quantdesk_single_s"]
    )
    figures["sweep_ratio_vs_vectorbt"] = figures["quantdesk_combos_per_s"] / figures["vectorbt_combos_per_s"]
    figures["sweep_ratio_vs_backtesting_py"] = figures["quantdesk_combos_per_s"] / figures["backtesting_combos_per_s"]
    report(figures)
    print_figures({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()})


def path_ratios(f: dict[str, float]) -> dict[str, float]:
    return {
        "cli_sweep_speedup_vs_vectorbt_process": f["vectorbt_sweep_process_s"] / f["cli_sweep_process_s"],
        "api_sweep_ratio_vs_vectorbt_rate": f["api_sweep_builtin_combos_per_s"] / f["vectorbt_combos_per_s"],
        "rule_sweep_share_of_builtin_rate": f["api_sweep_rule_combos_per_s"] / f["api_sweep_builtin_combos_per_s"],
    }


def report_paths(f: dict[str, float]) -> None:
    print_table(
        "the sweep users run: 355 sma_cross combinations on 100,000 minute bars",
        ["path", "quantdesk", "vectorbt", "ratio", "target"],
        [
            [
                "whole process (s, warm caches)",
                f["cli_sweep_process_s"],
                f["vectorbt_sweep_process_s"],
                f"{f['cli_sweep_speedup_vs_vectorbt_process']:.1f}x",
                ">= 10x",
            ],
            ["start-up: import to first query (s)", f["cli_startup_s"], f["vectorbt_startup_s"], "", ""],
            [
                "API job, POST to done (combinations/s; vectorbt in-process)",
                f["api_sweep_builtin_combos_per_s"],
                f["vectorbt_combos_per_s"],
                f"{f['api_sweep_ratio_vs_vectorbt_rate']:.1f}x",
                ">= 20x",
            ],
            [
                "API job, the same grid as a rule strategy (combinations/s)",
                f["api_sweep_rule_combos_per_s"],
                "",
                f"{f['rule_sweep_share_of_builtin_rate']:.0%} of built-in",
                ">= 50%",
            ],
        ],
    )


def report(f: dict[str, float]) -> None:
    report_paths(f)
    print_table(
        "one sma_cross(50, 200) backtest on 1,000,000 bars (s, after compilation)",
        ["quantdesk (trades + all metrics)", "vectorbt portfolio", "vectorbt + stats()", "vs stats", "vs portfolio"],
        [
            [
                f["quantdesk_single_s"],
                f["vectorbt_single_portfolio_s"],
                f["vectorbt_single_with_stats_s"],
                f"{f['single_speedup_vs_vectorbt_stats']:.1f}x",
                f"{f['single_speedup_vs_vectorbt_portfolio']:.1f}x",
            ]
        ],
    )
    print_table(
        "sweep of 355 sma_cross combinations on 100,000 bars (combinations/s)",
        [
            "quantdesk",
            "vectorbt",
            f"backtesting.py ({int(f['backtesting_subset_combinations'])} timed, extrapolated)",
            "vs vectorbt",
            "vs backtesting.py",
        ],
        [
            [
                f["quantdesk_combos_per_s"],
                f["vectorbt_combos_per_s"],
                f["backtesting_combos_per_s"],
                f"{f['sweep_ratio_vs_vectorbt']:.1f}x",
                f"{f['sweep_ratio_vs_backtesting_py']:.0f}x",
            ]
        ],
    )
    print_table(
        "first use in-process: compilation, or loading numba's cache (s)",
        ["quantdesk", "vectorbt"],
        [[f["quantdesk_first_call_s"], f["vectorbt_first_call_s"]]],
    )
    print_table(
        f"`quantdesk backtest` in a fresh environment (installed in {f['cli_environment_install_s']:.1f} s), "
        "empty numba cache (s)",
        ["bars", "first use", "afterwards"],
        [
            ["2,520 (ten years, daily)", f["cli_first_use_s"], f["cli_afterwards_s"]],
            ["200,000 (plain Python)", f["cli_200k_bars_first_use_s"], f["cli_200k_bars_afterwards_s"]],
            ["500,000 (compiled)", f["cli_500k_bars_first_use_s"], f["cli_500k_bars_afterwards_s"]],
        ],
    )


if __name__ == "__main__":
    main()
