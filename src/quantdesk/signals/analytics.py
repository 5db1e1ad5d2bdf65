"""Win rate and friends: what the signals sent to an account did, overall and by symbol."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.accounts.service import Principal
from quantdesk.core.money import quantize
from quantdesk.signals.models import Signal
from quantdesk.signals.parser import normalise_symbol


def summarise(signals: Iterable[Signal]) -> dict[str, Any]:
    rows = list(signals)
    closed = [s.realized_pnl for s in rows if s.status == "closed" and s.realized_pnl is not None]
    wins = [pnl for pnl in closed if pnl > 0]
    losses = [pnl for pnl in closed if pnl < 0]
    gross_loss = -sum(losses, Decimal(0))
    return {
        "signals": len(rows),
        "rejected": sum(s.status == "rejected" for s in rows),
        "duplicates": sum(s.status == "duplicate" for s in rows),
        "pending": sum(s.status == "pending" for s in rows),
        "open_trades": sum(s.status == "executed" and s.side != "close" for s in rows),
        "closed_trades": len(closed),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / len(closed) if closed else None,
        "average_win": quantize(sum(wins, Decimal(0)) / len(wins)) if wins else None,
        "average_loss": quantize(-gross_loss / len(losses)) if losses else None,
        "profit_factor": float(sum(wins, Decimal(0)) / gross_loss) if losses else None,
        "total_pnl": quantize(sum(closed, Decimal(0))),
    }


async def trading_analytics(
    session: AsyncSession,
    caller: Principal,
    account_id: int | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Over the signals received in [start, end): a trader sees their accounts, an admin everyone's."""
    query = select(Signal).join(Account, Account.id == Signal.account_id).order_by(Signal.id)
    if account_id is not None:
        await accounts.get_account(session, account_id, caller)  # 404 for another trader's
        query = query.where(Signal.account_id == account_id)
    elif not caller.is_admin:
        query = query.where(Account.user_id == caller.user_id)
    if symbol is not None:
        query = query.where(Signal.symbol == normalise_symbol(symbol))
    if start is not None:
        query = query.where(Signal.received_at >= start)
    if end is not None:
        query = query.where(Signal.received_at < end)
    signals = list(await session.scalars(query))
    by_symbol: dict[str, list[Signal]] = defaultdict(list)
    for signal in signals:
        if signal.symbol:
            by_symbol[signal.symbol].append(signal)
    return {
        **summarise(signals),
        "by_symbol": [{"symbol": name, **summarise(rows)} for name, rows in sorted(by_symbol.items())],
    }
