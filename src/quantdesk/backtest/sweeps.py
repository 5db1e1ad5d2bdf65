"""Sweep jobs: created in the request, run in the background batch by batch with progress, stored ranked.

A sweep is claimed with one atomic UPDATE before it runs, so that of several servers (or workers) exactly
one runs it; a sweep whose server stopped mid-way keeps a stale heartbeat, and every server looks for
such sweeps once a minute and reruns them.
"""

import base64
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import anyio
import numpy as np
import pandas as pd
from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from quantdesk.accounts.models import User
from quantdesk.accounts.service import Principal
from quantdesk.analytics import service as analytics_service
from quantdesk.backtest import selection, strategy_service, sweep, walkforward
from quantdesk.backtest.models import SweepRun
from quantdesk.backtest.schemas import SweepCreate, WalkForwardCreate
from quantdesk.backtest.service import (
    check_affordable,
    costs_of,
    data_fingerprint,
    encode_curve,
    simulate,
    trade_records,
)
from quantdesk.backtest.strategies import Indicators, Strategy
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import dialect_name, session_scope
from quantdesk.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed

# Progress is reported between batches. The first batch is a fiftieth of the grid; the next ones are sized
# from the rate measured so far to take about BATCH_SECONDS each: a long sweep reports (and can be cancelled)
# about once a second, while a short one is not cut into fifty calls that each pay the engine's set-up and
# leave a core idle at their end (a 355-pair grid on 100,000 bars ran 40% slower in 50 batches than in one).
_metrics_json = TypeAdapter(dict[str, Any])
BATCHES = 50
BATCH_SECONDS = 1.0
# A live server refreshes a running sweep's heartbeat after every batch, far more often than this.
STALE_AFTER = timedelta(minutes=10)
RESUME_EVERY_S = 60.0
log = logging.getLogger(__name__)
Progress = Callable[[int, int], None] | None  # told (completed, total) after each batch


JobBody = SweepCreate | WalkForwardCreate


def series_request(body: JobBody) -> analytics_service.SeriesRequest:
    return analytics_service.SeriesRequest(
        body.symbol, body.interval.value if body.interval else None, body.start, body.end
    )


async def create_sweep(
    session: AsyncSession,
    body: SweepCreate,
    settings: Settings,
    owner: Principal | None = None,
    strategy: Strategy | None = None,
) -> SweepRun:
    """Check everything that can be checked before running, then queue the sweep. A sweep a user asks
    for (``owner``) must fit the server's cost cap and the user's number of active jobs; the command
    line's operator (no owner) runs on their own machine's time, and may sweep a ``strategy`` from a file."""
    plan, loaded = await prepare(session, body, settings, owner, strategy, len, "the range")
    cost = len(plan.combinations) * len(loaded.bars)
    check_cost(cost, f"{len(plan.combinations):,} combinations x {len(loaded.bars):,} bars", owner, settings)
    return await queue(session, body, owner, plan, loaded, cost, len(plan.combinations), rank_by=body.rank_by)


async def create_walkforward(
    session: AsyncSession,
    body: WalkForwardCreate,
    settings: Settings,
    owner: Principal | None = None,
    strategy: Strategy | None = None,
) -> SweepRun:
    """Check and queue a walk-forward: its folds must fit the range, each training window the grid's
    longest warm-up, and its in-sample sweeps the cost cap (combinations x training bars, summed)."""
    plan, loaded = await prepare(session, body, settings, owner, strategy, lambda _: body.train, "a training window")
    windows = walkforward.Plan(body.train, body.test, body.step or body.test, body.mode, body.metric)
    folds = walkforward.make_folds(len(loaded.bars), windows)
    trained = sum(fold.test_start - fold.train_start for fold in folds)
    cost = len(plan.combinations) * trained
    check_cost(cost, f"{len(plan.combinations):,} combinations x {trained:,} training bars", owner, settings)
    run = await queue(session, body, owner, plan, loaded, cost, len(folds), rank_by=body.metric)
    run.kind, run.walkforward = "walkforward", asdict(windows)
    return run


async def prepare(
    session: AsyncSession,
    body: JobBody,
    settings: Settings,
    owner: Principal | None,
    strategy: Strategy | None,
    span: Callable[[pd.DataFrame], int],
    span_name: str,
) -> tuple[sweep.Sweep, analytics_service.LoadedSeries]:
    """The job's grid and bars, checked: the strategy and grid, the owner's active jobs, enough bars in
    ``span(bars)`` for the grid's longest warm-up, and cash for a whole unit."""
    if strategy is None:
        strategy = await strategy_service.lookup(
            session, body.strategy, body.strategy_version, owner.user_id if owner is not None else None
        )
    plan = sweep.build_sweep(strategy, body.grid)
    if owner is not None:
        await _check_active_jobs(session, owner, settings)
    loaded = await analytics_service.load_series(session, series_request(body), settings)
    needed = max(plan.strategy.warmup(p) for p in plan.combinations) + 1
    if span(loaded.bars) < needed:
        raise ValidationFailed(
            f"the longest windows of the grid need {needed} bars; {span_name} has {span(loaded.bars)}: "
            "widen it or shorten the windows"
        )
    check_affordable(body, loaded.bars, loaded.instrument.symbol)
    return plan, loaded


def check_cost(cost: int, made_of: str, owner: Principal | None, settings: Settings) -> None:
    if owner is not None and cost > settings.max_sweep_cost:
        raise ValidationFailed(
            f"the job would cost {cost:,} ({made_of}); this server runs research jobs of up to "
            f"{settings.max_sweep_cost:,} (QUANTDESK_MAX_SWEEP_COST): narrow the grid, shorten the range or "
            "resample to a coarser interval"
        )


async def queue(
    session: AsyncSession,
    body: JobBody,
    owner: Principal | None,
    plan: sweep.Sweep,
    loaded: analytics_service.LoadedSeries,
    cost: int,
    total: int,
    rank_by: str,
) -> SweepRun:
    run = SweepRun(
        owner_id=owner.user_id if owner is not None else None,
        cost=cost,
        instrument_id=loaded.instrument.id,
        symbol=loaded.instrument.symbol,
        interval=loaded.interval.value,
        strategy=plan.strategy.name,
        strategy_version=plan.strategy.version,
        data_fingerprint=data_fingerprint(loaded.bars),
        grid=body.grid,
        settings=body.model_dump(mode="json", exclude={"params", "grid"})
        | {"strategy": plan.strategy.name, "strategy_version": plan.strategy.version},
        rank_by=rank_by,
        total=total,
    )
    session.add(run)
    await session.flush()
    return run


ACTIVE = ("queued", "running")
RETRY_ACTIVE_S = 10.0


async def _check_active_jobs(session: AsyncSession, owner: Principal, settings: Settings) -> None:
    """429 when the owner already has their share of queued or running sweeps. On PostgreSQL the owner's
    row is locked first, so that two requests at once cannot both see one job too few (SQLite's writers
    take turns anyway)."""
    if dialect_name(session) == "postgresql":
        await session.execute(select(User.id).where(User.id == owner.user_id).with_for_update())
    active = await session.scalar(
        select(func.count()).where(SweepRun.owner_id == owner.user_id, SweepRun.status.in_(ACTIVE))
    )
    limit = settings.max_jobs_per_user
    if (active or 0) >= limit:
        raise TooManyRequests(
            f"you have {active} sweep(s) queued or running, and this server runs at most {limit} per user at "
            "once (QUANTDESK_MAX_JOBS_PER_USER): wait for one to finish, or cancel one with "
            "POST /api/v1/sweeps/{id}/cancel",
            retry_after_s=RETRY_ACTIVE_S,
        )


async def cancel_sweep(session: AsyncSession, sweep_id: int, caller: Principal) -> SweepRun:
    """Stop a queued or running sweep (its owner, or an admin): a running one stops after its batch."""
    run = await get_sweep(session, sweep_id, caller, kind=None)
    if not (caller.is_admin or run.owner_id == caller.user_id):
        raise Forbidden(f"sweep {sweep_id} is not yours to cancel")
    if run.status not in ACTIVE:
        raise Conflict(f"sweep {sweep_id} is {run.status}; only a queued or running sweep can be cancelled")
    run.status, run.finished_at = "cancelled", utcnow()
    return run


async def list_jobs(session: AsyncSession, caller: Principal, limit: int = 100) -> list[SweepRun]:
    """The caller's research jobs (sweeps), newest first, without their result tables."""
    mine = select(SweepRun).options(defer(SweepRun.results)).where(SweepRun.owner_id == caller.user_id)
    return list(await session.scalars(mine.order_by(SweepRun.id.desc()).limit(limit)))


def rank(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Best first; NaN (undefined, e.g. Sharpe without trades) last."""
    return table.sort_values(metric, ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def run_in_batches(
    bars: pd.DataFrame, plan: sweep.Sweep, body: SweepCreate, periods_per_year: float, progress: Progress = None
) -> pd.DataFrame:
    """The whole grid, in batches so that progress can be reported between them (CPU-bound: a thread)."""
    total = len(plan.combinations)
    size = max(1, math.ceil(total / BATCHES))
    parts = []
    cache: Indicators = {}  # each indicator computed once for the whole sweep
    start, started = 0, time.perf_counter()
    while start < total:
        chunk = sweep.Sweep(plan.strategy, plan.combinations[start : start + size])
        parts.append(sweep.run_sweep(bars, chunk, costs_of(body), body.allow_short, periods_per_year, cache))
        start += len(chunk.combinations)
        if progress is not None:
            progress(start, total)
        rate = start / max(time.perf_counter() - started, 1e-6)
        size = max(1, math.ceil(rate * BATCH_SECONDS))
    return rank(pd.concat(parts, ignore_index=True), body.rank_by)


def selection_of(
    table: pd.DataFrame, bars: pd.DataFrame, plan: sweep.Sweep, body: SweepCreate, periods_per_year: float
) -> dict[str, float] | None:
    """The deflated Sharpe ratio of the combination with the best Sharpe, for the number tried."""
    sharpes = table["sharpe"].to_numpy(dtype=np.float64)
    if not np.isfinite(sharpes).any():
        return None
    best = table.iloc[int(np.nanargmax(sharpes))]
    params = {key: float(best[key]) for key in plan.strategy.params if key in table.columns}
    params = {**plan.combinations[0], **params}
    outcome = simulate(bars, plan.strategy, params, costs_of(body), body.allow_short, periods_per_year)
    equity = outcome.result.equity
    returns = equity[1:] / equity[:-1] - 1.0
    return selection.deflated_sharpe(sharpes, returns, periods_per_year)


def run_walkforward(
    bars: pd.DataFrame, plan: sweep.Sweep, body: WalkForwardCreate, periods_per_year: float, progress: Progress = None
) -> walkforward.Outcome:
    windows = walkforward.Plan(body.train, body.test, body.step or body.test, body.mode, body.metric)
    return walkforward.run(bars, plan, windows, costs_of(body), body.allow_short, periods_per_year, progress)


def fold_records(outcome: walkforward.Outcome) -> list[dict[str, Any]]:
    """Each fold as stored: its windows (first and last bar's times), parameters and both metric sets."""
    index = outcome.bars_index
    rows = []
    for number, fold in enumerate(outcome.folds, start=1):
        window = fold.fold
        rows.append(
            {
                "fold": number,
                "train_start": index[window.train_start].isoformat(),
                "train_end": index[window.test_start - 1].isoformat(),
                "test_start": index[window.test_start].isoformat(),
                "test_end": index[window.test_end - 1].isoformat(),
                "params": fold.params,
                "in_sample": fold.in_sample,
                "out_of_sample": fold.out_of_sample,
            }
        )
    return rows


def summary_of(outcome: walkforward.Outcome) -> dict[str, Any]:
    """The stitched out-of-sample run: metrics, trades, equity (as a backtest stores it), efficiency and
    stability."""
    return {
        "metrics": _metrics_json.dump_python(outcome.metrics.as_dict(), mode="json"),
        "efficiency": outcome.efficiency,
        "stability": outcome.stability,
        "most_frequent_params": outcome.chosen,
        "trades": trade_records(outcome.index, outcome.result.trades),
        "equity": base64.b64encode(encode_curve(outcome.index, outcome.result.equity)).decode(),
    }


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; undefined values (a NaN Sharpe) become None."""
    return [
        {k: (v if math.isfinite(v) else None) for k, v in zip(table.columns, row, strict=True)}
        for row in table.astype(float).to_numpy().tolist()
    ]


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued and not yet taken, or queued or running with a heartbeat too old for a live server."""
    stale = SweepRun.heartbeat_at < now - STALE_AFTER
    return or_(SweepRun.status == "queued", and_(SweepRun.status == "running", stale))


async def claim(factory: async_sessionmaker[AsyncSession], sweep_id: int) -> tuple[JobBody, int | None] | None:
    """Take a job to run, atomically (one UPDATE): the request and owner for the winner, None for the rest."""
    async with session_scope(factory, write=True) as session:
        now = utcnow()
        taken = await session.execute(
            update(SweepRun)
            .where(SweepRun.id == sweep_id, _claimable(now))
            .values(status="running", heartbeat_at=now, completed=0)
            .returning(SweepRun.settings, SweepRun.grid, SweepRun.owner_id, SweepRun.kind)
        )
        row = taken.one_or_none()
    if row is None:
        return None
    schema: type[JobBody] = WalkForwardCreate if row.kind == "walkforward" else SweepCreate
    return schema.model_validate({**row.settings, "grid": row.grid}), row.owner_id


async def abandoned(factory: async_sessionmaker[AsyncSession]) -> list[int]:
    """Sweeps that no live server is running: queued or running, with a stale heartbeat."""
    async with session_scope(factory) as session:
        stale = SweepRun.heartbeat_at < utcnow() - STALE_AFTER
        found = await session.scalars(
            select(SweepRun.id).where(SweepRun.status.in_(("queued", "running")), stale).order_by(SweepRun.id)
        )
        return list(found)


async def resume_abandoned(factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Forever: claim and rerun abandoned sweeps (a sweep is deterministic, so a rerun gives its table)."""
    while True:
        try:
            for sweep_id in await abandoned(factory):
                await execute_sweep(factory, sweep_id, settings)
        except Exception:  # a database outage must not end the loop; the next round retries
            log.exception("resuming abandoned sweeps failed")
        await anyio.sleep(RESUME_EVERY_S)


async def execute_sweep(factory: async_sessionmaker[AsyncSession], sweep_id: int, settings: Settings) -> None:
    """Claim a sweep and run it to the end, storing progress as it goes; failures are stored, never raised."""
    claimed = await claim(factory, sweep_id)
    if claimed is None:
        return  # already taken, finished or gone
    body, owner_id = claimed
    try:
        async with session_scope(factory) as session:
            loaded = await analytics_service.load_series(session, series_request(body), settings)
            strategy = await strategy_service.lookup(session, body.strategy, body.strategy_version, owner_id)
        plan = sweep.build_sweep(strategy, body.grid)
        portal = anyio.from_thread

        def report(done: int, total: int) -> None:
            if not portal.run(_store_progress, factory, sweep_id, done):
                raise SweepCancelled  # between batches: the thread stops here

        read = data_fingerprint(loaded.bars)
        if isinstance(body, WalkForwardCreate):
            ran = await anyio.to_thread.run_sync(
                run_walkforward, loaded.bars, plan, body, loaded.periods_per_year, report
            )
            await _finish(factory, sweep_id, "done", fold_records(ran), None, summary=summary_of(ran), read=read)
            return
        table = await anyio.to_thread.run_sync(run_in_batches, loaded.bars, plan, body, loaded.periods_per_year, report)
        chosen = await anyio.to_thread.run_sync(selection_of, table, loaded.bars, plan, body, loaded.periods_per_year)
        await _finish(factory, sweep_id, "done", records(table), None, chosen, read=read)
    except SweepCancelled:
        log.info("sweep %s was cancelled while it ran", sweep_id)
    except Exception as exc:
        await _finish(factory, sweep_id, "failed", None, f"{type(exc).__name__}: {exc}"[:500])


class SweepCancelled(Exception):
    """Raised in the sweep's thread when its row says it was cancelled."""


async def _store_progress(factory: async_sessionmaker[AsyncSession], sweep_id: int, done: int) -> bool:
    """Store how far the sweep got; False when it should stop (cancelled, or gone)."""
    async with session_scope(factory, write=True) as session:
        run = await session.get(SweepRun, sweep_id, with_for_update=dialect_name(session) == "postgresql")
        if run is None or run.status != "running":
            return False
        run.completed, run.heartbeat_at = done, utcnow()
        return True


async def _finish(
    factory: async_sessionmaker[AsyncSession],
    sweep_id: int,
    status: str,
    results: list[dict[str, Any]] | None,
    error: str | None,
    chosen: dict[str, float] | None = None,
    summary: dict[str, Any] | None = None,
    read: dict[str, Any] | None = None,
) -> None:
    async with session_scope(factory, write=True) as session:
        run = await session.get(SweepRun, sweep_id, with_for_update=dialect_name(session) == "postgresql")
        if run is not None and run.status == "running":  # a cancelled sweep stays cancelled
            run.status, run.results, run.error, run.finished_at = status, results, error, utcnow()
            run.selection, run.summary = chosen, summary
            if read is not None and run.data_fingerprint is not None and read != run.data_fingerprint:
                # The bars changed between the request and the run (or its rerun after a restart): the
                # fingerprint says which bars the results come from, and which were there when it was asked.
                run.data_fingerprint = {**read, "queued_with": run.data_fingerprint}
            if status == "done":
                run.completed = run.total


def may_see(run: SweepRun, caller: Principal | None) -> bool:
    """A sweep of a user's own rule strategy is its owner's and admins'; every other sweep is public."""
    if run.strategy_version is None:
        return True
    return caller is not None and (caller.is_admin or caller.user_id == run.owner_id)


async def get_sweep(
    session: AsyncSession, sweep_id: int, caller: Principal | None = None, kind: str | None = "sweep"
) -> SweepRun:
    """A job the caller may see, of ``kind`` (any kind with None)."""
    run = await session.get(SweepRun, sweep_id)
    if run is None or not may_see(run, caller) or (kind is not None and run.kind != kind):
        what = "walk-forward" if kind == "walkforward" else "sweep"
        raise NotFound(f"no {what} {sweep_id}; start one with POST /api/v1/{what.replace('-', '')}s")
    return run


def parameter_names(run: SweepRun) -> list[str]:
    return list(run.grid)


def progress_pct(run: SweepRun) -> float:
    return run.completed / run.total * 100 if run.total else 0.0


def job_fields(run: SweepRun) -> dict[str, Any]:
    """What every research job's answer shows (``schemas.ResearchJobRead``)."""
    return {
        "id": run.id,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "symbol": run.symbol,
        "interval": run.interval,
        "strategy": run.strategy,
        "strategy_version": run.strategy_version,
        "data_fingerprint": run.data_fingerprint,
        "grid": run.grid,
        "status": run.status,
        "progress_pct": progress_pct(run),
        "cost": run.cost,
        "total": run.total,
        "completed": run.completed,
        "error": run.error,
    }


def require_done(run: SweepRun) -> list[dict[str, Any]]:
    if run.status != "done" or run.results is None:
        detail = f": {run.error}" if run.error else ""
        raise Conflict(f"sweep {run.id} is {run.status} ({progress_pct(run):.0f}% done){detail}")
    return run.results


async def list_sweeps(
    session: AsyncSession, limit: int = 100, caller: Principal | None = None, kind: str = "sweep"
) -> list[SweepRun]:
    """The newest sweeps the caller may see first, without their result tables."""
    newest = select(SweepRun).options(defer(SweepRun.results)).where(_visible(caller), SweepRun.kind == kind)
    return list(await session.scalars(newest.order_by(SweepRun.id.desc()).limit(limit)))


def _visible(caller: Principal | None) -> ColumnElement[bool]:
    if caller is not None and caller.is_admin:
        return true()
    public = SweepRun.strategy_version.is_(None)
    return public if caller is None else or_(public, SweepRun.owner_id == caller.user_id)
