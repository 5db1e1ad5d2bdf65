"""Gems are written in the transaction of the fill that earns them, so totals always match the trades."""

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from quantdesk.gamification.models import GemEntry

# Per database (one dict in a sessionmaker's info, shared by its sessions): user id -> how many trade
# gems the user is known to have, committed. The number only grows, so once it has reached the last
# milestone no later trade can earn a bonus, and it is not counted again: a query less per fill.
TRADES_KEY = "quantdesk_committed_trades"
_COUNTED_KEY = "quantdesk_trades_counted"  # this session's counts, known only once its transaction commits


async def award_trade(
    session: AsyncSession, user_id: int, account_id: int, order_id: int, milestones: dict[int, int]
) -> list[GemEntry]:
    """One gem for a filled trade, and the milestone bonus when this is the user's Nth."""
    earned = [GemEntry(user_id=user_id, account_id=account_id, order_id=order_id, amount=1, reason="trade")]
    session.add(earned[0])
    if not milestones or session.info.get(TRADES_KEY, {}).get(user_id, 0) >= max(milestones):
        return earned
    await session.flush()
    # Counted only as far as the last milestone: past it no count matters, and a busy trader's
    # thousands of trades are not scanned again on every fill.
    trade_gems = select(GemEntry.id).where(GemEntry.user_id == user_id, GemEntry.reason == "trade")
    counted = trade_gems.limit(max(milestones) + 1).subquery()
    trades = int(await session.scalar(select(func.count()).select_from(counted)) or 0)
    session.info.setdefault(_COUNTED_KEY, {})[user_id] = trades
    bonus = milestones.get(trades)
    if bonus:
        milestone = GemEntry(
            user_id=user_id, account_id=account_id, order_id=order_id, amount=bonus, reason=f"milestone:{trades}"
        )
        session.add(milestone)
        earned.append(milestone)
    return earned


@event.listens_for(Session, "after_commit")
def _remember_counts(session: Session) -> None:
    # A count includes the transaction's own gems: it is true of the database once they are committed.
    if session.in_nested_transaction():
        return
    counted: dict[int, int] = session.info.pop(_COUNTED_KEY, {})
    known: dict[int, int] | None = session.info.get(TRADES_KEY)
    if known is not None:
        for user_id, trades in counted.items():
            known[user_id] = max(known.get(user_id, 0), trades)


@event.listens_for(Session, "after_soft_rollback")
def _forget_counts(session: Session, _previous: object) -> None:
    # Any rollback, a savepoint's too: a count that may include undone gems is not remembered.
    session.info.pop(_COUNTED_KEY, None)
