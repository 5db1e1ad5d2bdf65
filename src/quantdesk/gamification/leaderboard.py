"""Leaderboards, computed when read from the gem, fill and cash ledgers (so they always agree with them).

- gems: gems earned in the window (a gem per filled trade plus milestone bonuses).
- trades: fills in the window.
- return_pct: the time-weighted return (see ``returns``): deposits and withdrawals are not performance.
- sharpe: the closed trades' returns in the window (realised P&L over the cost of what was closed), mean
  over standard deviation times the square root of their number (a per-trade Sharpe ratio); null below
  two closed trades.
Ranks are standard competition ranks (1, 2, 2, 4) by the chosen column, ties listed by username. Admins
and users without a paper account are not listed; a ratio with no defined value (a zero or negative
denominator) is null, never an error.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import fmean, stdev

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account, User
from quantdesk.core.clock import utcnow
from quantdesk.gamification import returns
from quantdesk.gamification.models import GemEntry
from quantdesk.trading.models import Fill

WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}


@dataclass(frozen=True)
class Row:
    rank: int
    username: str
    display_name: str
    gems: int
    trades: int
    return_pct: float | None
    sharpe: float | None


@dataclass
class _Tally:
    gems: int = 0
    trades: int = 0
    returns: list[float] = field(default_factory=list)


def since_of(window: str) -> datetime | None:
    span = WINDOWS[window]
    return None if span is None else utcnow() - span


async def _tallies(session: AsyncSession, since: datetime | None) -> dict[int, _Tally]:
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    gems = select(GemEntry.user_id, GemEntry.amount)
    fills = select(Account.user_id, Fill.side, Fill.quantity, Fill.price, Fill.realized_pnl).join(
        Account, Account.id == Fill.account_id
    )
    if since is not None:
        gems, fills = gems.where(GemEntry.at >= since), fills.where(Fill.at >= since)
    for user_id, amount in await session.execute(gems):
        tallies[user_id].gems += amount
    for user_id, side, quantity, price, realized in await session.execute(fills):
        tally = tallies[user_id]
        tally.trades += 1
        # The cost of what was closed: a sell closes a long bought for (price - P&L per unit), a buy
        # covers a short sold for (price + P&L per unit). A cost of zero or less (bought for nothing)
        # has no return to speak of: the trade counts, its ratio does not.
        basis = quantity * price - realized if side == "sell" else quantity * price + realized
        if realized != 0 and basis > 0:
            tally.returns.append(float(realized / basis))
    return tallies


def _sharpe(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    spread = stdev(returns)
    return fmean(returns) / spread * math.sqrt(len(returns)) if spread > 0 else None


def competition_ranks(values: list[float | None]) -> list[int]:
    """1 + the number of strictly better values; None is worse than any number (1, 2, 2, 4)."""
    keyed = [-math.inf if v is None else v for v in values]
    return [1 + sum(other > mine for other in keyed) for mine in keyed]


def _metric(row: Row, by: str) -> float | None:
    if by == "gems":
        return float(row.gems)
    return row.return_pct if by == "return_pct" else row.sharpe


async def leaderboard(session: AsyncSession, by: str, window: str, top: int) -> list[Row]:
    tallies = await _tallies(session, since_of(window))
    # Competitors: traders with a paper account (admins run the desk; a user without an account has
    # nothing to rank).
    with_account = select(Account.user_id)
    users = await session.scalars(
        select(User).where(User.disabled_at.is_(None), User.role != "admin", User.id.in_(with_account))
    )
    twr = await returns.by_user(session, since_of(window))
    rows = []
    for user in users:
        tally = tallies.get(user.id, _Tally())
        ratio = twr.get(user.id)
        rows.append(Row(0, user.username, user.display_name, tally.gems, tally.trades, ratio, _sharpe(tally.returns)))
    values = [_metric(row, by) for row in rows]
    ranks = competition_ranks(values)
    ranked = sorted(zip(ranks, rows, strict=True), key=lambda pair: (pair[0], pair[1].username.lower()))
    return [replace(row, rank=rank) for rank, row in ranked[:top]]
