"""HTTP endpoints of backtests under /api/v1/backtests."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response, status

from quantdesk.accounts.auth import CurrentUser, OptionalUser
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.backtest import service
from quantdesk.backtest.models import Backtest
from quantdesk.backtest.schemas import (
    SUMMARY_METRICS,
    BacktestBase,
    BacktestCreate,
    BacktestRead,
    BacktestRerun,
    BacktestSummary,
)
from quantdesk.core.types import RowId
from quantdesk.market.rendering import iso_timestamps

router = APIRouter(prefix="/api/v1/backtests", tags=["backtests"])
PointsQuery = Annotated[int, Query(ge=0, le=100_000, description="Equity points returned (0 for none).")]


def backtest_read(run: Backtest, equity_points: int) -> BacktestRead:
    stamps, equity = service.decode_curve(run.equity_curve)
    keep = service.downsample(equity.size, equity_points)
    drawdown = equity / np.maximum.accumulate(equity) - 1.0 if equity.size else equity
    points = [
        {"timestamp": ts, "equity": float(equity[i]), "drawdown_pct": float(drawdown[i] * 100)}
        for ts, i in zip(iso_timestamps(stamps[keep]), keep.tolist(), strict=True)
    ]
    base = BacktestBase.model_validate(run).model_dump()
    return BacktestRead.model_validate(
        {
            **base,
            "data_fingerprint": run.data_fingerprint,
            "settings": run.settings,
            "metrics": run.metrics,
            "trades": run.trades,
            "equity": points,
        }
    )


@router.post("", response_model=BacktestRead, status_code=status.HTTP_201_CREATED)
async def create_backtest(
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    body: BacktestCreate,
    equity_points: PointsQuery = 1000,
) -> BacktestRead:
    """Run a strategy over stored bars and store the result (metrics, trades, equity curve). A run of your
    own rule strategy records its version and is visible to you and admins only."""
    return backtest_read(await service.run_backtest(session, body, settings, caller), equity_points)


@router.get("", response_model=list[BacktestSummary])
async def list_backtests(
    session: SessionDep,
    caller: OptionalUser,
    symbol: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[BacktestSummary]:
    runs = await service.list_backtests(session, symbol, limit, caller)
    return [
        BacktestSummary.model_validate(
            {**BacktestBase.model_validate(run).model_dump(), **{key: run.metrics[key] for key in SUMMARY_METRICS}}
        )
        for run in runs
    ]


@router.get("/{backtest_id}", response_model=BacktestRead)
async def get_backtest(
    session: SessionDep, caller: OptionalUser, backtest_id: RowId, equity_points: PointsQuery = 1000
) -> BacktestRead:
    return backtest_read(await service.get_backtest(session, backtest_id, caller), equity_points)


@router.get("/{backtest_id}/equity.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_equity_chart(
    session: SessionDep,
    settings: SettingsDep,
    caller: OptionalUser,
    backtest_id: RowId,
    width: Annotated[int, Query(ge=300, le=4000)] = 1200,
    height: Annotated[int, Query(ge=200, le=3000)] = 700,
) -> Response:
    """Equity against buy and hold, with entry/exit markers and a drawdown panel."""
    return Response(
        await service.equity_png(session, backtest_id, settings, width, height, caller), media_type="image/png"
    )


@router.post("/{backtest_id}/rerun", response_model=BacktestRerun, status_code=status.HTTP_201_CREATED)
async def rerun_backtest(
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    backtest_id: RowId,
    equity_points: PointsQuery = 1000,
) -> BacktestRerun:
    """Run a stored backtest again exactly as asked (strategy version, parameters, costs, range); the answer
    says whether the bars it read have changed since."""
    new, old = await service.rerun_backtest(session, backtest_id, settings, caller)
    changes = service.data_changes(old.data_fingerprint, new.data_fingerprint)
    read = backtest_read(new, equity_points).model_dump()
    return BacktestRerun.model_validate(
        {**read, "rerun_of": old.id, "data_changed": changes is not None, "data_changes": changes}
    )
