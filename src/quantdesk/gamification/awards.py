"""Gems are written in the transaction of the fill that earns them, so totals always match the trades."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.gamification.models import GemEntry


async def award_trade(
    session: AsyncSession, user_id: int, account_id: int, order_id: int, milestones: dict[int, int]
) -> list[GemEntry]:
    """One gem for a filled trade, and the milestone bonus when this is the user's Nth."""
    earned = [GemEntry(user_id=user_id, account_id=account_id, order_id=order_id, amount=1, reason="trade")]
    session.add(earned[0])
    if not milestones:
        return earned
    await session.flush()
    # Counted only as far as the last milestone: past it no count matters, and a busy trader's
    # thousands of trades are not scanned again on every fill.
    trade_gems = select(GemEntry.id).where(GemEntry.user_id == user_id, GemEntry.reason == "trade")
    counted = trade_gems.limit(max(milestones) + 1).subquery()
    trades = await session.scalar(select(func.count()).select_from(counted))
    bonus = milestones.get(int(trades or 0))
    if bonus:
        milestone = GemEntry(
            user_id=user_id, account_id=account_id, order_id=order_id, amount=bonus, reason=f"milestone:{trades}"
        )
        session.add(milestone)
        earned.append(milestone)
    return earned
