"""The metrics of a backtest, from its equity curve and trades; every formula is in docs/metrics.md."""

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quantdesk.backtest import engine, kernels


@dataclass(frozen=True)
class Metrics:
    start: datetime
    end: datetime
    duration: timedelta
    exposure_pct: float
    equity_final: float
    equity_peak: float
    return_pct: float
    buy_and_hold_return_pct: float
    cagr_pct: float | None
    volatility_ann_pct: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown_pct: float
    avg_drawdown_pct: float
    max_drawdown_duration: timedelta
    trades: int
    win_rate_pct: float | None
    best_trade_pct: float | None
    worst_trade_pct: float | None
    avg_trade_pct: float | None
    profit_factor: float | None
    expectancy_pct: float | None
    sqn: float | None
    commissions: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _finite(value: float | np.floating[Any] | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def drawdown(equity: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fall from the running peak as a fraction (0 at a peak, negative below it)."""
    return equity / np.maximum.accumulate(equity) - 1.0


def drawdown_episodes(dd: NDArray[np.float64]) -> list[tuple[int, int, float]]:
    """(first bar below a peak, bar of recovery or the last bar, deepest fall) for each episode."""
    below = dd < 0
    edges = np.diff(below.astype(np.int8), prepend=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if ends.size < starts.size:  # still below a peak at the last bar
        ends = np.append(ends, dd.size - 1)
    # Each segment from one start to the next holds one episode and then bars at a peak (dd = 0), so
    # its minimum is the episode's trough.
    troughs = np.minimum.reduceat(dd, starts) if starts.size else np.array([])
    return list(zip(starts.tolist(), ends.tolist(), troughs.tolist(), strict=True))


def _return_metrics(equity: NDArray[np.float64], periods_per_year: float, cash: float) -> dict[str, float | None]:
    returns = np.diff(equity) / equity[:-1] if equity.size > 1 else np.array([])
    years = equity.size / periods_per_year
    growth = equity[-1] / cash
    cagr = (growth ** (1.0 / years) - 1.0) * 100.0 if years > 0 and growth > 0 else None
    std = returns.std(ddof=1) if returns.size > 1 else math.nan
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)) if returns.size else math.nan
    mean = returns.mean() if returns.size else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "cagr_pct": _finite(cagr) if cagr is not None else None,
            "volatility_ann_pct": _finite(std * math.sqrt(periods_per_year) * 100.0),
            "sharpe": _finite(mean / std * math.sqrt(periods_per_year)) if std > 0 else None,
            "sortino": _finite(mean / downside * math.sqrt(periods_per_year)) if downside > 0 else None,
        }


def _trade_metrics(trades: NDArray[np.float64]) -> dict[str, float | int | None]:
    closed = trades[trades[:, kernels.EXIT_BAR] >= 0] if trades.size else trades.reshape(0, kernels.TRADE_COLUMNS)
    n = int(closed.shape[0])
    if n == 0:
        keys = (
            "win_rate_pct",
            "best_trade_pct",
            "worst_trade_pct",
            "avg_trade_pct",
            "profit_factor",
            "expectancy_pct",
            "sqn",
        )
        return {"trades": 0, **dict.fromkeys(keys)}
    pnl, returns = closed[:, kernels.PNL], closed[:, kernels.RETURN_PCT]
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    geometric = (np.prod(1.0 + returns / 100.0) ** (1.0 / n) - 1.0) * 100.0 if np.all(returns > -100) else math.nan
    pnl_std = pnl.std(ddof=1) if n > 1 else math.nan
    return {
        "trades": n,
        "win_rate_pct": float((pnl > 0).mean() * 100.0),
        "best_trade_pct": float(returns.max()),
        "worst_trade_pct": float(returns.min()),
        "avg_trade_pct": _finite(geometric),
        "profit_factor": _finite(gains / losses) if losses > 0 else None,
        "expectancy_pct": float(returns.mean()),
        "sqn": _finite(math.sqrt(n) * pnl.mean() / pnl_std) if pnl_std > 0 else None,
    }


def _bar_span(index: pd.DatetimeIndex, first: int, last: int) -> timedelta:
    return (index[last] - index[first]).to_pytimedelta()


def compute(
    index: pd.DatetimeIndex,
    close: NDArray[np.float64],
    result: engine.EngineResult,
    cash: float,
    periods_per_year: float,
) -> Metrics:
    """All metrics of one run; ``index`` and ``close`` are the bars the run saw."""
    equity = result.equity
    dd = drawdown(equity)
    episodes = drawdown_episodes(dd)
    longest = max(episodes, key=lambda e: e[1] - e[0], default=None)
    returns = _return_metrics(equity, periods_per_year, cash)
    max_dd = float(dd.min() * 100.0)
    cagr = returns["cagr_pct"]
    return Metrics(
        start=index[0].to_pydatetime(),
        end=index[-1].to_pydatetime(),
        duration=_bar_span(index, 0, len(index) - 1),
        exposure_pct=float(np.mean(result.position != 0) * 100.0),
        equity_final=float(equity[-1]),
        equity_peak=float(equity.max()),
        return_pct=float((equity[-1] / cash - 1.0) * 100.0),
        buy_and_hold_return_pct=float((close[-1] / close[0] - 1.0) * 100.0),
        cagr_pct=cagr,
        volatility_ann_pct=returns["volatility_ann_pct"],
        sharpe=returns["sharpe"],
        sortino=returns["sortino"],
        calmar=_finite(cagr / abs(max_dd)) if cagr is not None and max_dd < 0 else None,
        max_drawdown_pct=max_dd,
        avg_drawdown_pct=float(np.mean([e[2] for e in episodes]) * 100.0) if episodes else 0.0,
        # from the peak (the bar before the first one below it) to the recovery, or the last bar
        max_drawdown_duration=_bar_span(index, longest[0] - 1, longest[1]) if longest else timedelta(0),
        commissions=result.commissions,
        **_trade_metrics(result.trades),  # type: ignore[arg-type]
    )
