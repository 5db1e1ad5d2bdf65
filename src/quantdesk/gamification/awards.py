"""Gems are written in the transaction of the fill that earns them, so totals always match the trades."""

from functools import cache

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.db import insert_row
from quantdesk.gamification.models import GemEntry


@cache
def _trades_counted_up_to(last_milestone: int) -> Select[int]:
    """The user's trades, counted only as far as the last milestone: past it no count matters, and a busy
    trader's thousands of trades are not scanned again on every fill. Built once per milestone table."""
    trade_gems = select(GemEntry.id).where(GemEntry.user_id == bindparam("user_id"), GemEntry.reason == "trade")
    return select(func.count()).select_from(trade_gems.limit(last_milestone + 1).subquery())


async def award_trade(
    session: AsyncSession, user_id: int, account_id: int, order_id: int, milestones: dict[int, int]
) -> list[GemEntry]:
    """One gem for a filled trade, and the milestone bonus when this is the user's Nth."""
    earned = [GemEntry(user_id=user_id, account_id=account_id, order_id=order_id, amount=1, reason="trade")]
    await insert_row(session, earned[0])  # stored at once: the count below sees it without a flush
    if not milestones:
        return earned
    trades = await session.scalar(_trades_counted_up_to(max(milestones)), {"user_id": user_id})
    bonus = milestones.get(int(trades or 0))
    if bonus:
        milestone = GemEntry(
            user_id=user_id, account_id=account_id, order_id=order_id, amount=bonus, reason=f"milestone:{trades}"
        )
        await insert_row(session, milestone)
        earned.append(milestone)
    return earned
