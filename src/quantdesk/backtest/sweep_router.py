"""HTTP endpoints of parameter sweeps under /api/v1/sweeps."""

import io
from typing import Annotated

import anyio
import pandas as pd
from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

from quantdesk.accounts.auth import CurrentUser, OptionalUser
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.backtest import sweeps
from quantdesk.backtest.models import SweepRun
from quantdesk.backtest.schemas import JobRead, SweepCreate, SweepRead
from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import RowId

router = APIRouter(prefix="/api/v1/sweeps", tags=["backtests"])


def sweep_read(run: SweepRun, rows: int) -> SweepRead:
    results = run.results or []
    names = sweeps.parameter_names(run)
    return SweepRead(
        **sweeps.job_fields(run),
        rank_by=run.rank_by,
        best_params={k: results[0][k] for k in names if k in results[0]} if results else None,
        selection=run.selection,
        rows=results[:rows],
    )


@router.post("", response_model=SweepRead, status_code=status.HTTP_202_ACCEPTED)
async def create_sweep(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    body: SweepCreate,
    background: BackgroundTasks,
) -> SweepRead:
    """Queue a grid of backtests; it runs in the background: poll GET /api/v1/sweeps/{id} for progress.
    A sweep may cost at most QUANTDESK_MAX_SWEEP_COST (combinations x bars: 422 above), and a user may have
    QUANTDESK_MAX_JOBS_PER_USER queued or running at once (429 with Retry-After above)."""
    run = await sweeps.create_sweep(session, body, settings, caller)
    background.add_task(sweeps.execute_sweep, request.app.state.sessionmaker, run.id, settings)
    return sweep_read(run, 0)


@router.post("/{sweep_id}/cancel", response_model=SweepRead)
async def cancel_sweep(session: SessionDep, caller: CurrentUser, sweep_id: RowId) -> SweepRead:
    """Stop a queued or running sweep (yours, or any as an admin); a running one stops after its batch."""
    return sweep_read(await sweeps.cancel_sweep(session, sweep_id, caller), 0)


@router.get("/{sweep_id}/results.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_results_csv(session: SessionDep, caller: OptionalUser, sweep_id: RowId) -> Response:
    """Every combination of a finished sweep, best first, as CSV."""
    run = await sweeps.get_sweep(session, sweep_id, caller)
    rows = sweeps.require_done(run)
    out = io.StringIO()
    pd.DataFrame.from_records(rows).to_csv(out, index=False, na_rep="")
    filename = f"sweep-{run.id}-{run.symbol}-{run.strategy}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


jobs = APIRouter(prefix="/api/v1/jobs", tags=["backtests"])


@jobs.get("", response_model=list[JobRead])
async def list_jobs(
    session: SessionDep, caller: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[JobRead]:
    """Your research jobs (sweeps and walk-forwards), newest first: status, progress and cost."""
    return [job_read(run) for run in await sweeps.list_jobs(session, caller, limit)]


def job_read(run: SweepRun) -> JobRead:
    return JobRead(
        id=run.id,
        kind="walkforward" if run.kind == "walkforward" else "sweep",
        status=run.status,
        progress_pct=sweeps.progress_pct(run),
        cost=run.cost,
        created_at=run.created_at,
        heartbeat_at=run.heartbeat_at,
        finished_at=run.finished_at,
        error=run.error,
        url=f"/api/v1/{run.kind}s/{run.id}",
    )


@router.get("/{sweep_id}", response_model=SweepRead)
async def get_sweep(
    session: SessionDep,
    caller: OptionalUser,
    sweep_id: RowId,
    rows: Annotated[int, Query(ge=0, le=100_000, description="Ranked rows to return.")] = 20,
) -> SweepRead:
    return sweep_read(await sweeps.get_sweep(session, sweep_id, caller), rows)


@router.get("/{sweep_id}/heatmap.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_heatmap(session: SessionDep, caller: OptionalUser, sweep_id: RowId) -> Response:
    """The ranking metric over a two-parameter grid (first parameter across, second up)."""
    from quantdesk.backtest.charts import render_heatmap

    run = await sweeps.get_sweep(session, sweep_id, caller)
    rows = sweeps.require_done(run)
    names = sweeps.parameter_names(run)
    if len(names) != 2:
        raise ValidationFailed(f"a heat map needs a grid of exactly two parameters; this one has {len(names)}")
    title = f"sweep {run.id}: {run.symbol} {run.interval} {run.strategy}, {run.rank_by}"
    png = await anyio.to_thread.run_sync(render_heatmap, rows, names[0], names[1], run.rank_by, title)
    return Response(png, media_type="image/png")
