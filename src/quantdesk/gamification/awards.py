"""Gems are written in the transaction of the fill that earns them, so totals always match the trades."""

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Identified, append, dialect_insert, write_records
from quantdesk.gamification.models import MILESTONE, GemEntry

# Per database (one dict in a sessionmaker's info, shared by its sessions): user id -> how many trade
# gems the user is known to have, committed. The number only grows, so once it has reached the last
# milestone no later trade can earn a bonus, and it is not counted again: a query less per fill.
TRADES_KEY = "quantdesk_committed_trades"
_COUNTED_KEY = "quantdesk_trades_counted"  # this session's counts, known only once its transaction commits


async def award_trade(
    session: AsyncSession, user_id: int, account_id: int, order: Identified, milestones: dict[int, int]
) -> None:
    """One gem for a filled trade (``order``: a row of the session, maybe not written yet), and the
    milestone bonus when this is the user's Nth."""
    append(
        session,
        GemEntry,
        user_id=user_id,
        account_id=account_id,
        order_id=order,
        amount=1,
        reason="trade",
        at=utcnow(),
    )
    if not milestones or session.info.get(TRADES_KEY, {}).get(user_id, 0) >= max(milestones):
        return
    counted: dict[int, int] = session.info.setdefault(_COUNTED_KEY, {})
    if user_id in counted:  # counted earlier in this transaction (a batch of orders): this trade is one more
        trades = counted[user_id] + 1
    else:
        await write_records(session)  # the trade gems of the transaction count
        trades = await _trades(session, user_id, max(milestones))
    while bonus := milestones.get(trades):
        if order.id is None:
            await write_records(session)  # the order is written: the bonus names its id
        milestone = GemEntry(
            user_id=user_id, account_id=account_id, order_id=order.id, amount=bonus, reason=f"milestone:{trades}"
        )
        if await _stored_unless_taken(session, milestone):
            break
        # Another account of the user filled at the same moment and counted the same trades: its bonus
        # is committed now (the insert waited for it), so this trade comes after it. Counted again; the
        # same count means the user had this milestone before (a ledger edited by hand): nothing to earn.
        await write_records(session)  # the trade gems of this transaction's earlier fills count too
        again = await _trades(session, user_id, max(milestones))
        if again == trades:
            break
        trades = again
    counted[user_id] = trades


async def _trades(session: AsyncSession, user_id: int, last_milestone: int) -> int:
    """The user's trade gems, committed and this transaction's, counted only as far as the last
    milestone: past it no count matters, and a busy trader's thousands of trades are not scanned again."""
    trade_gems = select(GemEntry.id).where(GemEntry.user_id == user_id, GemEntry.reason == "trade")
    counted = trade_gems.limit(last_milestone + 1).subquery()
    return int(await session.scalar(select(func.count()).select_from(counted)) or 0)


async def _stored_unless_taken(session: AsyncSession, milestone: GemEntry) -> bool:
    """Store the milestone unless the user has it already (``uq_gems_milestone``); an insert that meets
    another transaction's uncommitted row waits for its outcome, and takes its place if it rolls back."""
    at = utcnow()
    values = {
        "user_id": milestone.user_id,
        "account_id": milestone.account_id,
        "order_id": milestone.order_id,
        "amount": milestone.amount,
        "reason": milestone.reason,
        "at": at,
    }
    statement = (
        dialect_insert(session, GemEntry)
        .values(values)
        .on_conflict_do_nothing(index_elements=[GemEntry.user_id, GemEntry.reason], index_where=MILESTONE)
        .returning(GemEntry.id)
    )
    stored: int | None = await session.scalar(statement)
    if stored is None:
        return False
    milestone.id, milestone.at = stored, at
    return True


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
