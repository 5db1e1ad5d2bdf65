"""Forecasting and report speed, and how each model fares against the naive baseline, in one run.

    .venv/bin/python -m benchmarks.forecast [--folds 10] [--horizon 30] [--requests 7]

- fit (hold-out fit and final fit, as `POST /api/v1/forecasts/models` does) and a 30-bar recursive
  prediction per model, on ten years of daily bars;
- walk-forward errors of every model next to naive on each demo instrument's ten years of daily bars;
- the median time of `GET /api/v1/reports/backtest/{id}?format=pdf` from a running server (target < 2 s).
"""

import argparse
import statistics
import time
from datetime import date

import numpy as np

from benchmarks.common import print_figures, print_table
from benchmarks.server import SYMBOL, serving_ten_years
from quantdesk.forecast import evaluation, forecasters, training
from quantdesk.forecast.features import FeatureSpec
from quantdesk.market.demo import DEMO_SET, daily_series

END = date(2026, 11, 20)


def fit_and_predict(close: np.ndarray, horizon: int) -> dict[str, float]:
    figures = {}
    for kind in forecasters.KINDS:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            trained = training.train(kind, close, FeatureSpec())
            trained.forecaster.predict(close, horizon)
            timings.append(time.perf_counter() - started)
        figures[f"fit_predict_{kind}_s"] = min(timings)
    return figures


def walk_forward(folds: int, horizon: int) -> tuple[dict[str, float], list[list[object]]]:
    figures: dict[str, float] = {}
    rows: list[list[object]] = []
    kinds = [k for k in forecasters.KINDS if k != "naive"]
    for demo in DEMO_SET:
        symbol = demo.instrument.symbol
        close = daily_series(demo, END).close
        result = evaluation.walk_forward(close, kinds, horizon, folds, FeatureSpec())
        naive = result.pooled["naive"].mae or float("nan")
        for kind, errors in result.pooled.items():
            mae = errors.mae or float("nan")
            figures[f"walk_forward_{symbol.lower()}_{kind}_mase"] = errors.mase or float("nan")
            direction = errors.direction_accuracy
            rows.append([symbol, kind, mae, errors.mase, "-" if direction is None else direction, f"{mae / naive:.3f}"])
    return figures, rows


def report_pdf_median_s(requests: int) -> dict[str, float]:
    """A server holding ten years of daily bars and one stored backtest of them."""
    with serving_ten_years(timeout_s=120) as client:
        run = client.post("/api/v1/backtests", json={"symbol": SYMBOL, "params": {"fast": 10, "slow": 30}})
        path = f"/api/v1/reports/backtest/{run.json()['id']}?format=pdf"
        first = time.perf_counter()
        assert client.get(path).status_code == 200
        first_s = time.perf_counter() - first
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        return {
            "report_pdf_first_s": first_s,
            "report_pdf_median_s": statistics.median(timings),
            "report_pdf_bytes": float(len(response.content)),
            "report_trades": float(len(run.json()["trades"])),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--requests", type=int, default=7)
    args = parser.parse_args()
    ten_years = daily_series(DEMO_SET[0], END).close
    figures: dict[str, float] = {"bars": float(ten_years.size)}
    figures |= fit_and_predict(ten_years, args.horizon)
    print_table(
        f"fit (hold-out + final) and a {args.horizon}-bar prediction on {ten_years.size:,} daily bars (s, best of 3)",
        ["model", "seconds"],
        [[kind, figures[f"fit_predict_{kind}_s"]] for kind in forecasters.KINDS],
    )
    walk, rows = walk_forward(args.folds, args.horizon)
    figures |= walk
    print_table(
        f"walk-forward, {args.folds} folds x {args.horizon} bars per demo instrument (pooled)",
        ["instrument", "model", "MAE", "MASE", "direction %", "MAE / naive's"],
        rows,
    )
    figures |= report_pdf_median_s(args.requests)
    print_table(
        "backtest report as PDF over HTTP (s)",
        ["trades", "first request", f"median of {args.requests}", "target"],
        [[int(figures["report_trades"]), figures["report_pdf_first_s"], figures["report_pdf_median_s"], "< 2"]],
    )
    print_figures({k: round(v, 4) for k, v in figures.items()})


if __name__ == "__main__":
    main()
