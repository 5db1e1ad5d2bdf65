"""Run by benchmarks/backtest.py with the peers' own interpreter (vectorbt, backtesting.py installed).

Reads bars from an .npz file, times the peers on the same work as quantdesk, prints one JSON line.
Not part of quantdesk: it imports only the peers, numpy and pandas.
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def frame(path: str) -> pd.DataFrame:
    data = np.load(path)
    index = pd.DatetimeIndex(data["ts"].astype("datetime64[us]"))
    return pd.DataFrame(
        {
            "Open": data["open"],
            "High": data["high"],
            "Low": data["low"],
            "Close": data["close"],
            "Volume": data["volume"],
        },
        index=index,
    )


def vectorbt_single(bars: pd.DataFrame, fast: int, slow: int) -> dict[str, float]:
    import vectorbt as vbt

    close = bars["Close"]
    started = time.perf_counter()
    fast_ma, slow_ma = vbt.MA.run(close, fast), vbt.MA.run(close, slow)
    entries, exits = fast_ma.ma_crossed_above(slow_ma), fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, init_cash=10_000, freq="1D")
    portfolio.total_return()
    portfolio_s = time.perf_counter() - started
    portfolio.stats()
    portfolio.trades.records_readable  # noqa: B018 - the trade list, as quantdesk returns it
    return {"vectorbt_single_portfolio_s": portfolio_s, "vectorbt_single_with_stats_s": time.perf_counter() - started}


def vectorbt_sweep(bars: pd.DataFrame, fasts: list[int], slows: list[int]) -> dict[str, float]:
    import vectorbt as vbt

    close = bars["Close"]
    pairs = [(f, s) for f in fasts for s in slows if f < s]
    started = time.perf_counter()
    fast_ma = vbt.MA.run(close, [f for f, _ in pairs], short_name="fast")
    slow_ma = vbt.MA.run(close, [s for _, s in pairs], short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, init_cash=10_000, freq="1D")
    portfolio.total_return()
    portfolio.max_drawdown()
    portfolio.sharpe_ratio()
    portfolio.trades.count()
    elapsed = time.perf_counter() - started
    return {"vectorbt_sweep_s": elapsed, "vectorbt_combos_per_s": len(pairs) / elapsed, "combinations": len(pairs)}


def backtesting_sweep(bars: pd.DataFrame, pairs: list[tuple[int, int]]) -> dict[str, float]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        fast = 10
        slow = 30

        def init(self) -> None:
            self.a = self.I(SMA, self.data.Close, self.fast)
            self.b = self.I(SMA, self.data.Close, self.slow)

        def next(self) -> None:
            if crossover(self.a, self.b):
                self.position.close()
                self.buy()
            elif crossover(self.b, self.a):
                self.position.close()

    test = Backtest(bars, SmaCross, cash=10_000_000, commission=0.0, finalize_trades=True)
    started = time.perf_counter()
    for fast, slow in pairs:
        test.run(fast=fast, slow=slow)
    elapsed = time.perf_counter() - started
    return {
        "backtesting_subset_combinations": len(pairs),
        "backtesting_subset_s": elapsed,
        "backtesting_combos_per_s": len(pairs) / elapsed,
    }


def whole_sweep(sweep_path: str) -> None:
    """vectorbt's whole process for the sweep `quantdesk sweep` runs: import, read, MA.run, from_signals,
    return, drawdown, Sharpe and trades (timed from outside, as a process)."""
    import vectorbt as vbt

    close = frame(sweep_path)["Close"]
    fasts, slows = list(range(5, 101, 5)), list(range(20, 401, 20))
    pairs = [(f, s) for f in fasts for s in slows if f < s]
    fast_ma = vbt.MA.run(close, [f for f, _ in pairs], short_name="fast")
    slow_ma = vbt.MA.run(close, [s for _, s in pairs], short_name="slow")
    portfolio = vbt.Portfolio.from_signals(
        close, fast_ma.ma_crossed_above(slow_ma), fast_ma.ma_crossed_below(slow_ma), init_cash=10_000, freq="1min"
    )
    table = pd.DataFrame(
        {
            "return": portfolio.total_return(),
            "drawdown": portfolio.max_drawdown(),
            "sharpe": portfolio.sharpe_ratio(),
            "trades": portfolio.trades.count(),
        }
    )
    print(table.sort_values("sharpe", ascending=False).head(10).to_string())


def startup(sweep_path: str) -> None:
    """vectorbt's start-up: import it and read the bars."""
    import vectorbt  # noqa: F401

    frame(sweep_path)


def main() -> None:
    if sys.argv[1] == "--whole-sweep":
        whole_sweep(sys.argv[2])
        return
    if sys.argv[1] == "--startup":
        startup(sys.argv[2])
        return
    single_path, sweep_path, subset = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fasts, slows = list(range(5, 101, 5)), list(range(20, 401, 20))
    out: dict[str, float] = {}
    single = frame(single_path)
    started = time.perf_counter()
    vectorbt_single(single.iloc[:2000], 50, 200)  # vectorbt compiles on first use
    out["vectorbt_first_call_s"] = time.perf_counter() - started
    out |= vectorbt_single(single, 50, 200)
    sweep_bars = frame(sweep_path)
    out |= vectorbt_sweep(sweep_bars, fasts, slows)
    pairs = [(f, s) for f in fasts for s in slows if f < s]
    if subset > 0:
        step = max(1, len(pairs) // subset)
        out |= backtesting_sweep(sweep_bars, pairs[::step][:subset])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
