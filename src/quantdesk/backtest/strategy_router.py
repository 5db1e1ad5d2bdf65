"""HTTP endpoints of strategies under /api/v1/strategies: built-ins, installed ones and your rule strategies."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from quantdesk.accounts.auth import CurrentUser, OptionalUser
from quantdesk.api.deps import SessionDep
from quantdesk.backtest import strategy_service
from quantdesk.backtest.models import StoredStrategy
from quantdesk.backtest.schemas import StrategyCheck, StrategyRead
from quantdesk.core.types import RowId

router = APIRouter(prefix="/api/v1/strategies", tags=["backtests"])
RULE_EXAMPLE = {
    "name": "rsi_dip",
    "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
    "entry": "crosses_below(rsi(close, n), lo)",
    "exit": "crosses_above(rsi(close, n), 70) or bars_held >= 20",
    "stop_loss_pct": 5,
}
Document = Annotated[dict[str, Any], Body(description="A rule strategy (docs/strategies.md).", examples=[RULE_EXAMPLE])]
OwnerQuery = Annotated[RowId | None, Query(description="Admins: another user's strategies.")]
VersionQuery = Annotated[RowId | None, Query(description="A version (the latest when omitted).")]


def _read(row: StoredStrategy) -> StrategyRead:
    return strategy_service.stored_read(row, [row.version])


@router.get("", response_model=list[StrategyRead])
async def list_strategies(session: SessionDep, caller: OptionalUser, owner_id: OwnerQuery = None) -> list[StrategyRead]:
    """Built-ins, installed Python strategies, and your rule strategies (latest versions), with parameters."""
    return await strategy_service.list_strategies(session, caller, owner_id)


@router.post("", response_model=StrategyRead, status_code=status.HTTP_201_CREATED)
async def create_strategy(session: SessionDep, caller: CurrentUser, document: Document) -> StrategyRead:
    """Store a rule strategy as version 1. Errors answer 422 with the field and position of each problem."""
    return _read(await strategy_service.create_strategy(session, caller, document))


@router.post("/check", response_model=StrategyCheck)
async def check_strategy(_caller: CurrentUser, document: Document) -> StrategyCheck:
    """Compile a rule strategy without storing it: its parameters, or 422 with each error's position."""
    return strategy_service.check(document)


@router.get("/{name}", response_model=StrategyRead)
async def get_strategy(
    session: SessionDep,
    caller: OptionalUser,
    name: str,
    version: VersionQuery = None,
    owner_id: OwnerQuery = None,
) -> StrategyRead:
    return await strategy_service.get_strategy(session, caller, name, version, owner_id)


@router.put("/{name}", response_model=StrategyRead)
async def update_strategy(session: SessionDep, caller: CurrentUser, name: str, document: Document) -> StrategyRead:
    """Store a new version; runs made with earlier versions keep theirs."""
    return _read(await strategy_service.update_strategy(session, caller, name, document))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_strategy(session: SessionDep, caller: CurrentUser, name: str) -> Response:
    """Delete every version (softly: runs made with them can still be rerun by version)."""
    await strategy_service.delete_strategy(session, caller, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
