"""GET /api/v1/leaderboard."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from quantdesk.accounts.auth import public_read
from quantdesk.api.deps import SessionDep
from quantdesk.gamification.leaderboard import leaderboard

router = APIRouter(prefix="/api/v1/leaderboard", tags=["gamification"])


class LeaderboardRow(BaseModel):
    rank: int
    username: str
    display_name: str
    gems: int
    trades: int
    return_pct: float | None
    sharpe: float | None


@router.get("", response_model=list[LeaderboardRow], dependencies=[Depends(public_read)])
async def get_leaderboard(
    session: SessionDep,
    top: Annotated[int, Query(ge=1, le=1000)] = 10,
    by: Literal["gems", "return_pct", "sharpe"] = "gems",
    window: Literal["7d", "30d", "all"] = "all",
) -> list[LeaderboardRow]:
    """Ranks with ties (1, 2, 2, 4) by gems, return or Sharpe over the window; definitions in docs/trading.md."""
    rows = await leaderboard(session, by, window, top)
    return [LeaderboardRow.model_validate(row, from_attributes=True) for row in rows]
