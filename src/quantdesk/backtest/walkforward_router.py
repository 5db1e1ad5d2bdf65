"""HTTP endpoints of walk-forward evaluations under /api/v1/walkforwards (research jobs, like sweeps)."""

import base64
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, BackgroundTasks, Query, Request, status

from quantdesk.accounts.auth import CurrentUser, OptionalUser
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.backtest import service, sweeps
from quantdesk.backtest.models import SweepRun
from quantdesk.backtest.schemas import WalkForwardCreate, WalkForwardRead
from quantdesk.core.types import RowId
from quantdesk.market.rendering import iso_timestamps

router = APIRouter(prefix="/api/v1/walkforwards", tags=["backtests"])
PointsQuery = Annotated[int, Query(ge=0, le=100_000, description="Equity points returned (0 for none).")]


def walkforward_read(run: SweepRun, equity_points: int) -> WalkForwardRead:
    summary: dict[str, Any] = run.summary or {}
    points = []
    if summary.get("equity"):
        stamps, equity = service.decode_curve(base64.b64decode(summary["equity"]))
        keep = service.downsample(equity.size, equity_points)
        drawdown = equity / np.maximum.accumulate(equity) - 1.0
        points = [
            {"timestamp": ts, "equity": float(equity[i]), "drawdown_pct": float(drawdown[i] * 100)}
            for ts, i in zip(iso_timestamps(stamps[keep]), keep.tolist(), strict=True)
        ]
    return WalkForwardRead.model_validate(
        {
            **sweeps.job_fields(run),
            "plan": run.walkforward or {},
            "folds": run.results or [],
            "metrics": summary.get("metrics"),
            "efficiency": summary.get("efficiency"),
            "stability": summary.get("stability"),
            "most_frequent_params": summary.get("most_frequent_params"),
            "equity": points,
            "trades": summary.get("trades", []),
        }
    )


@router.post("", response_model=WalkForwardRead, status_code=status.HTTP_202_ACCEPTED)
async def create_walkforward(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    body: WalkForwardCreate,
    background: BackgroundTasks,
) -> WalkForwardRead:
    """Queue a walk-forward: per fold, an in-sample sweep picks parameters by `metric`, then they trade the
    next `test` bars. Poll GET /api/v1/walkforwards/{id}; it counts against the same caps as sweeps."""
    run = await sweeps.create_walkforward(session, body, settings, caller)
    background.add_task(sweeps.execute_sweep, request.app.state.sessionmaker, run.id, settings)
    return walkforward_read(run, 0)


@router.get("/{walkforward_id}", response_model=WalkForwardRead)
async def get_walkforward(
    session: SessionDep, caller: OptionalUser, walkforward_id: RowId, equity_points: PointsQuery = 500
) -> WalkForwardRead:
    return walkforward_read(await sweeps.get_sweep(session, walkforward_id, caller, kind="walkforward"), equity_points)


@router.post("/{walkforward_id}/cancel", response_model=WalkForwardRead)
async def cancel_walkforward(session: SessionDep, caller: CurrentUser, walkforward_id: RowId) -> WalkForwardRead:
    """Stop a queued or running walk-forward (yours, or any as an admin); a running one stops after its fold."""
    return walkforward_read(await sweeps.cancel_sweep(session, walkforward_id, caller), 0)
