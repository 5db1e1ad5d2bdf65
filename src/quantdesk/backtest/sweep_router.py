"""HTTP endpoints of parameter sweeps under /api/v1/sweeps."""

from typing import Annotated

import anyio
from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.backtest import sweeps
from quantdesk.backtest.models import SweepRun
from quantdesk.backtest.schemas import SweepCreate, SweepRead
from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import RowId

router = APIRouter(prefix="/api/v1/sweeps", tags=["backtests"])


def sweep_read(run: SweepRun, rows: int) -> SweepRead:
    results = run.results or []
    names = sweeps.parameter_names(run)
    return SweepRead(
        id=run.id,
        created_at=run.created_at,
        finished_at=run.finished_at,
        symbol=run.symbol,
        interval=run.interval,
        strategy=run.strategy,
        grid=run.grid,
        rank_by=run.rank_by,
        status=run.status,
        progress_pct=run.completed / run.total * 100 if run.total else 0.0,
        total=run.total,
        completed=run.completed,
        error=run.error,
        best_params={k: results[0][k] for k in names if k in results[0]} if results else None,
        rows=results[:rows],
    )


@router.post("", response_model=SweepRead, status_code=status.HTTP_202_ACCEPTED)
async def create_sweep(
    request: Request, session: SessionDep, settings: SettingsDep, body: SweepCreate, background: BackgroundTasks
) -> SweepRead:
    """Queue a grid of backtests; it runs in the background: poll GET /api/v1/sweeps/{id} for progress."""
    run = await sweeps.create_sweep(session, body, settings)
    background.add_task(sweeps.execute_sweep, request.app.state.sessionmaker, run.id, settings)
    return sweep_read(run, 0)


@router.get("/{sweep_id}", response_model=SweepRead)
async def get_sweep(
    session: SessionDep,
    sweep_id: RowId,
    rows: Annotated[int, Query(ge=0, le=100_000, description="Ranked rows to return.")] = 20,
) -> SweepRead:
    return sweep_read(await sweeps.get_sweep(session, sweep_id), rows)


@router.get("/{sweep_id}/heatmap.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_heatmap(session: SessionDep, sweep_id: RowId) -> Response:
    """The ranking metric over a two-parameter grid (first parameter across, second up)."""
    from quantdesk.backtest.charts import render_heatmap

    run = await sweeps.get_sweep(session, sweep_id)
    rows = sweeps.require_done(run)
    names = sweeps.parameter_names(run)
    if len(names) != 2:
        raise ValidationFailed(f"a heat map needs a grid of exactly two parameters; this one has {len(names)}")
    title = f"sweep {run.id}: {run.symbol} {run.interval} {run.strategy}, {run.rank_by}"
    png = await anyio.to_thread.run_sync(render_heatmap, rows, names[0], names[1], run.rank_by, title)
    return Response(png, media_type="image/png")
