"""Analytics speed: the enriched table with all six indicators over 1,000,000 one-minute bars, next to
plain pandas code computing the same columns, and the stats + enriched + chart path over HTTP for ten
years of daily bars (median of 20 requests each, against a running server on SQLite).

    .venv/bin/python -m benchmarks.analytics [--rows N] [--runs R] [--requests K]
"""

import argparse
import statistics
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import pandas as pd

from benchmarks.common import best_of, print_figures, print_table
from benchmarks.server import SYMBOL, serving_ten_years
from quantdesk.analytics.enriched import EnrichOptions, enrich, parse_indicators
from quantdesk.core.types import to_epoch_us
from quantdesk.market.intervals import Interval
from quantdesk.market.providers.synthetic import SeriesSpec, bar_times, generate_bars

ALL_SIX = "sma:20,ema:50,rsi:14,macd:12:26:9,bollinger:20:2,atr:14"


def plain_pandas(bars: pd.DataFrame, ppy: float) -> pd.DataFrame:
    """What a careful analyst writes with pandas alone, for the same columns."""
    close, high, low = bars["close"], bars["high"], bars["low"]
    out = bars.copy()
    out["return"] = close.pct_change()
    out["log_return"] = np.log(close).diff()
    out["cumulative_return"] = close / close.iloc[0] - 1
    roll = close.rolling(20)
    out["rolling_mean_20"], out["rolling_std_20"] = roll.mean(), roll.std()
    out["rolling_min_20"], out["rolling_max_20"] = roll.min(), roll.max()
    out["volatility_20"] = out["return"].rolling(20).std() * np.sqrt(ppy)
    out["normalized_100"] = close / close.iloc[0] * 100
    out["drawdown"] = close / close.cummax() - 1
    out["sma_20"] = close.rolling(20).mean()
    out["ema_50"] = close.ewm(span=50, adjust=False).mean()
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    out["rsi_14"] = 100 - 100 / (1 + gain / loss)
    line = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    out["macd_12_26_9"] = line
    out["macd_signal_12_26_9"] = line.ewm(span=9, adjust=False).mean()
    out["macd_hist_12_26_9"] = line - out["macd_signal_12_26_9"]
    mid, std = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    out["bollinger_upper_20_2"], out["bollinger_middle_20_2"], out["bollinger_lower_20_2"] = (
        mid + 2 * std,
        mid,
        mid - 2 * std,
    )
    previous = close.shift()
    true_range = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(axis=1)
    out["atr_14"] = true_range.ewm(alpha=1 / 14, adjust=False).mean()
    return out


def measure_enriched(rows: int, runs: int) -> dict[str, float]:
    start = to_epoch_us(datetime(2024, 1, 1, tzinfo=UTC))
    bars = generate_bars(SeriesSpec(periods_per_year=525_600), bar_times(start, rows, Interval.m1, False), 3).to_frame()
    ppy = 525_600.0
    options = EnrichOptions(periods_per_year=ppy, indicators=tuple(parse_indicators(ALL_SIX)))
    ours = enrich(bars, options)
    theirs = plain_pandas(bars, ppy)
    assert list(ours.columns) == list(theirs.columns)
    quantdesk_s = best_of(runs, lambda: enrich(bars, options))
    pandas_s = best_of(runs, lambda: plain_pandas(bars, ppy))
    return {
        "enriched_rows": rows,
        "enriched_quantdesk_s": quantdesk_s,
        "enriched_plain_pandas_s": pandas_s,
        "enriched_speed_ratio_vs_pandas": pandas_s / quantdesk_s,
    }


def measure_http(requests: int) -> dict[str, float]:
    """Median answer times of stats, enriched and chart for ten years of daily bars."""
    with serving_ten_years() as client:
        paths = {
            "stats": f"/api/v1/instruments/{SYMBOL}/stats",
            "enriched": f"/api/v1/instruments/{SYMBOL}/enriched?indicators={ALL_SIX}",
            "chart": f"/api/v1/instruments/{SYMBOL}/chart.png?indicators=sma:50,sma:200,bollinger:20:2",
        }
        return {f"http_{name}_median_ms": _median_ms(client, path, requests) for name, path in paths.items()}


def _median_ms(client: httpx.Client, path: str, requests: int) -> float:
    assert client.get(path).status_code == 200  # warm caches, fonts and the import of matplotlib
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    figures = measure_enriched(args.rows, args.runs) | measure_http(args.requests)
    figures["http_path_median_ms"] = sum(figures[f"http_{n}_median_ms"] for n in ("stats", "enriched", "chart"))
    print_table(
        f"enriched table, all six indicators, {args.rows:,} one-minute bars (best of {args.runs})",
        ["quantdesk (s)", "plain pandas (s)", "quantdesk speed vs pandas"],
        [
            [
                figures["enriched_quantdesk_s"],
                figures["enriched_plain_pandas_s"],
                f"{figures['enriched_speed_ratio_vs_pandas']:.2f}x",
            ]
        ],
    )
    print_table(
        f"HTTP, ten years of daily bars, median of {args.requests} requests (ms)",
        ["stats", "enriched (6 indicators)", "chart.png", "all three"],
        [[figures[f"http_{n}_median_ms"] for n in ("stats", "enriched", "chart", "path")]],
    )
    print_figures({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()})


if __name__ == "__main__":
    main()
