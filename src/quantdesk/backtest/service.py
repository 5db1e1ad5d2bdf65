"""Run, store and read backtests: load bars through the analytics service, simulate, persist."""

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
import pandas as pd
from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from quantdesk.accounts.service import Principal
from quantdesk.analytics import service as analytics_service
from quantdesk.backtest import engine, kernels, metrics, strategies, strategy_service
from quantdesk.backtest.engine import Costs, ExitReason, Sizing
from quantdesk.backtest.models import Backtest
from quantdesk.backtest.schemas import BacktestCreate
from quantdesk.core.config import Settings
from quantdesk.core.errors import NotFound, ValidationFailed

SETTING_FIELDS = (
    "cash",
    "commission_pct",
    "commission_fixed",
    "slippage_bps",
    "sizing",
    "sizing_value",
    "fractional",
    "fill",
    "stop_loss_pct",
    "take_profit_pct",
    "allow_short",
    "start",
    "end",
)
_json = TypeAdapter(dict[str, Any])


@dataclass(frozen=True)
class Outcome:
    """One simulated run, before it is stored."""

    index: pd.DatetimeIndex
    result: engine.EngineResult
    metrics: metrics.Metrics


def costs_of(body: BacktestCreate) -> Costs:
    return Costs(
        cash=body.cash,
        commission_pct=body.commission_pct,
        commission_fixed=body.commission_fixed,
        slippage_bps=body.slippage_bps,
        sizing=Sizing[body.sizing],
        sizing_value=body.sizing_value,
        fractional=body.fractional,
        fill_close=body.fill == "close",
        stop_loss_pct=body.stop_loss_pct if body.stop_loss_pct is not None else math.nan,
        take_profit_pct=body.take_profit_pct if body.take_profit_pct is not None else math.nan,
    )


def simulate(
    bars: pd.DataFrame,
    strategy: strategies.Strategy,
    params: dict[str, float],
    costs: Costs,
    allow_short: bool,
    periods_per_year: float,
) -> Outcome:
    """Signals, simulation and metrics: pure and CPU-bound, so callers run it in a worker thread."""
    sig = strategies.signals(bars, strategy, params, allow_short)
    costs = strategies.run_costs(costs, strategy, params)
    result = engine.simulate(
        bars["open"].to_numpy(),
        bars["high"].to_numpy(),
        bars["low"].to_numpy(),
        bars["close"].to_numpy(),
        sig.long_entries,
        sig.long_exits,
        sig.short_entries,
        sig.short_exits,
        costs,
    )
    index = pd.DatetimeIndex(bars.index)
    return Outcome(
        index, result, metrics.compute(index, bars["close"].to_numpy(), result, costs.cash, periods_per_year)
    )


def check_affordable(body: BacktestCreate, bars: pd.DataFrame, symbol: str) -> None:
    """Refuse a run that cannot buy a single whole unit at any bar of its range (the cash, or its
    fraction, below the lowest price): it would only report zero trades."""
    if body.fractional or body.sizing == "quantity" or bars.empty:
        return
    budget = body.cash * (body.sizing_value if body.sizing == "fraction" else 1.0)
    cheapest = float(bars["close"].min())
    if cheapest > budget:
        raise ValidationFailed(
            f"with {budget:,.2f} to spend, not one whole unit of {symbol} can be bought (its lowest close in "
            f"the range is {cheapest:,.2f}), so nothing would trade: allow fractional units "
            "(fractional=true, --fractional) or start with more cash"
        )


def data_fingerprint(bars: pd.DataFrame) -> dict[str, Any]:
    """What identifies the bars a run read: their count, first and last time, and a hash of every value."""
    digest = hashlib.sha256(pd.DatetimeIndex(bars.index).as_unit("us").asi8.tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        digest.update(np.ascontiguousarray(bars[column].to_numpy(dtype="<f8")).tobytes())
    return {
        "bars": len(bars),
        "first": bars.index[0].isoformat() if len(bars) else None,
        "last": bars.index[-1].isoformat() if len(bars) else None,
        "sha256": digest.hexdigest()[:32],
    }


async def run_backtest(
    session: AsyncSession,
    body: BacktestCreate,
    settings: Settings,
    caller: Principal | None = None,
    strategy: strategies.Strategy | None = None,
) -> Backtest:
    """Run and store a backtest: of ``strategy`` when given (a file on the command line), else of the one
    the body names (built-in, installed, or the caller's rule strategy)."""
    if strategy is None:
        owner = caller.user_id if caller is not None else None
        strategy = await strategy_service.lookup(session, body.strategy, body.strategy_version, owner)
    params = strategies.bind(strategy, body.params)
    request = analytics_service.SeriesRequest(
        body.symbol, body.interval.value if body.interval else None, body.start, body.end
    )
    loaded = await analytics_service.load_series(session, request, settings)
    needed = strategy.warmup(params) + 1
    if len(loaded.bars) < needed:
        raise ValidationFailed(
            f"{strategy.name} with {params} needs at least {needed} bars; the range has {len(loaded.bars)}: "
            "widen the range or shorten the windows"
        )
    check_affordable(body, loaded.bars, loaded.instrument.symbol)
    outcome = await anyio.to_thread.run_sync(
        simulate, loaded.bars, strategy, params, costs_of(body), body.allow_short, loaded.periods_per_year
    )
    run = Backtest(
        instrument_id=loaded.instrument.id,
        symbol=loaded.instrument.symbol,
        interval=loaded.interval.value,
        strategy=strategy.name,
        strategy_version=strategy.version,
        owner_id=caller.user_id if caller is not None else None,
        data_fingerprint=data_fingerprint(loaded.bars),
        params=params,
        settings=body.model_dump(include=set(SETTING_FIELDS)),
        metrics=_json.dump_python(outcome.metrics.as_dict(), mode="json"),
        trades=trade_records(outcome.index, outcome.result.trades),
        equity_curve=encode_curve(outcome.index, outcome.result.equity),
    )
    session.add(run)
    await session.flush()
    return run


def trade_records(index: pd.DatetimeIndex, table: np.ndarray) -> list[dict[str, Any]]:
    last = len(index) - 1
    records = []
    for row in table:
        entry, exit_bar = int(row[kernels.ENTRY_BAR]), int(row[kernels.EXIT_BAR])
        closed = exit_bar >= 0
        records.append(
            {
                "direction": "long" if row[kernels.DIRECTION] > 0 else "short",
                "entry_time": index[entry].isoformat(),
                "entry_price": float(row[kernels.ENTRY_PRICE]),
                "exit_time": index[exit_bar].isoformat() if closed else None,
                "exit_price": float(row[kernels.EXIT_PRICE]) if closed else None,
                "size": float(row[kernels.SIZE]),
                "pnl": float(row[kernels.PNL]),
                "return_pct": float(row[kernels.RETURN_PCT]),
                "bars_held": (exit_bar if closed else last) - entry,
                "exit_reason": ExitReason(int(row[kernels.REASON])).name,
            }
        )
    return records


def encode_curve(index: pd.DatetimeIndex, equity: np.ndarray) -> bytes:
    stamps = index.as_unit("us").asi8.astype("<i8")
    return stamps.tobytes() + np.asarray(equity, dtype="<f8").tobytes()


def decode_curve(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    n = len(blob) // 16
    return np.frombuffer(blob, dtype="<i8", count=n), np.frombuffer(blob, dtype="<f8", count=n, offset=8 * n)


def downsample(n: int, points: int) -> np.ndarray:
    """Evenly spaced positions, always with the first and the last."""
    if points <= 0:
        return np.array([], dtype=int)
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(int))


def visible_to(caller: Principal | None) -> ColumnElement[bool]:
    """Runs of a user's own rule strategy are their owner's and admins'; every other run is public."""
    if caller is not None and caller.is_admin:
        return true()
    private = Backtest.strategy_version.is_not(None)
    return ~private if caller is None else or_(~private, Backtest.owner_id == caller.user_id)


async def get_backtest(session: AsyncSession, backtest_id: int, caller: Principal | None = None) -> Backtest:
    """A stored run, if the caller may see it (unseen and missing runs answer alike: no backtest)."""
    run = await session.scalar(select(Backtest).where(Backtest.id == backtest_id, visible_to(caller)))
    if run is None:
        raise NotFound(f"no backtest {backtest_id}; list them with GET /api/v1/backtests")
    return run


async def list_backtests(
    session: AsyncSession, symbol: str | None = None, limit: int = 100, caller: Principal | None = None
) -> list[Backtest]:
    # Without the equity curves and trade lists: a list shows metrics, and a minute-bar curve is megabytes.
    light = (defer(Backtest.equity_curve), defer(Backtest.trades))
    statement = select(Backtest).options(*light).where(visible_to(caller)).order_by(Backtest.id.desc()).limit(limit)
    if symbol:
        statement = statement.where(Backtest.symbol == symbol.upper())
    return list((await session.execute(statement)).scalars())


async def equity_png(
    session: AsyncSession, backtest_id: int, settings: Settings, width: int, height: int, caller: Principal | None
) -> bytes:
    """Equity against buy and hold (from the bars still stored), trade markers and the drawdown."""
    from quantdesk.backtest.charts import equity_series, render_equity, trade_times  # matplotlib on demand

    run = await get_backtest(session, backtest_id, caller)
    stamps, values = decode_curve(run.equity_curve)
    equity = equity_series(stamps, values)
    hold = await buy_and_hold(session, run, settings, equity)
    entries, exits = trade_times(run.trades)
    title = f"backtest {run.id}: {run.symbol} {run.interval} {run.strategy} {_compact(run.params)}"
    return await anyio.to_thread.run_sync(render_equity, equity, hold, entries, exits, title, width, height)


def _compact(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in params.items())


async def buy_and_hold(session: AsyncSession, run: Backtest, settings: Settings, equity: pd.Series) -> pd.Series | None:
    """Starting cash invested at the first close, over the same bars; None if they are gone."""
    request = analytics_service.SeriesRequest(
        run.symbol, run.interval, equity.index[0].isoformat(), equity.index[-1].isoformat()
    )
    try:
        loaded = await analytics_service.load_series(session, request, settings)
    except (NotFound, ValidationFailed):
        return None
    close = loaded.bars["close"]
    return close / float(close.iloc[0]) * float(run.settings.get("cash", equity.iloc[0]))


async def rerun_backtest(
    session: AsyncSession, backtest_id: int, settings: Settings, caller: Principal
) -> tuple[Backtest, Backtest]:
    """Run a stored backtest again, as it was asked (the same strategy version, parameters, costs and
    range): the new run and the old one, whose data fingerprints say whether the bars changed."""
    old = await get_backtest(session, backtest_id, caller)
    strategy = await strategy_service.lookup(session, old.strategy, old.strategy_version, old.owner_id)
    body = BacktestCreate.model_validate(
        {**old.settings, "symbol": old.symbol, "interval": old.interval, "strategy": old.strategy, "params": old.params}
    )
    new = await run_backtest(session, body, settings, caller, strategy)
    if old.owner_id is not None and old.strategy_version is not None:
        new.owner_id = old.owner_id  # a rerun of a user's rule strategy stays theirs
    return new, old


def data_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    """What differs between the bars two runs read, in words; None when they are the same bars (or the
    old run predates fingerprints)."""
    if old is None or new is None or old == new:
        return None
    parts = [
        f"{key} {old.get(key)} -> {new.get(key)}" for key in ("bars", "first", "last") if old.get(key) != new.get(key)
    ]
    return "the bars changed since the first run: " + ("; ".join(parts) if parts else "same range, other values")
