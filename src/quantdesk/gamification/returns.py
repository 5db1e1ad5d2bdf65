"""Time-weighted returns of paper accounts, as brokers report them: cash flows are not performance.

Each deposit, withdrawal or reset row records the account's equity just before it (``equity_before``).
The flows cut the account's life into periods; a period starts at the equity just after a flow (V_start:
the equity before it plus the amount; after a reset, the cash it restored) and ends at the equity just
before the next flow, or at the equity now (cash plus positions at their last prices) for the last one:

    return = prod(V_end / V_start) - 1          none when any V_start <= 0

A window (7 or 30 days) links the periods that overlap it; the one running when the window opened counts
whole, since equity is known only at flows. Flows stored before equities were kept (migration 0012) have
none: the time up to the first flow with one counts realised P&L only, net of commissions, over the net
deposits of that time. A user with several accounts gets their accounts' returns weighted by each
account's equity now. docs/metrics.md states the same.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account, LedgerEntry
from quantdesk.trading import margin
from quantdesk.trading.models import Fill

CASH_FLOWS = ("deposit", "withdrawal", "reset")


@dataclass(frozen=True)
class Flow:
    at: datetime
    kind: str
    amount: Decimal
    balance: Decimal  # cash after the flow
    equity_before: Decimal | None

    @property
    def equity_after(self) -> Decimal:
        if self.equity_before is None:  # pragma: no cover - callers pass stored flows only
            raise ValueError("a flow stored before equities were kept")
        # A reset clears the positions: the equity after it is the cash it restored.
        return self.balance if self.kind == "reset" else self.equity_before + self.amount


def time_weighted(
    flows: list[Flow],
    equity_now: Decimal,
    since: datetime | None = None,
    legacy_pnl: Decimal = Decimal(0),
) -> float | None:
    """The account's time-weighted return in percent (see the module), from its cash flows in order.
    ``legacy_pnl``: realised P&L, net of commissions, before the first flow that has an equity."""
    if not flows:
        return None
    first_known = next((i for i, flow in enumerate(flows) if flow.equity_before is not None), len(flows))
    legacy, known = flows[:first_known], flows[first_known:]
    growth = Decimal(1)
    if legacy and (since is None or not known or known[0].at > since):
        capital = sum((flow.amount for flow in legacy), Decimal(0))
        if capital <= 0:
            return None
        growth *= 1 + legacy_pnl / capital
    if known:
        # The period running when the window opened: from the last flow at or before it.
        start = 0 if since is None else max((i for i, flow in enumerate(known) if flow.at <= since), default=0)
        ends = [flow.equity_before for flow in known[start + 1 :]] + [equity_now]
        for flow, end in zip(known[start:], ends, strict=True):
            begin = flow.equity_after
            if begin <= 0 or end is None:
                return None
            growth *= end / begin
    return float((growth - 1) * 100)


async def by_user(session: AsyncSession, since: datetime | None) -> dict[int, float]:
    """Each user's time-weighted return in percent (users with none defined are left out)."""
    owners: dict[int, int] = {}
    flows: dict[int, list[Flow]] = defaultdict(list)
    rows = await session.execute(
        select(Account.id, Account.user_id, LedgerEntry)
        .join(LedgerEntry, LedgerEntry.account_id == Account.id)
        .where(LedgerEntry.kind.in_(CASH_FLOWS))
        .order_by(LedgerEntry.id)
    )
    for account_id, user_id, row in rows:
        owners[account_id] = user_id
        flows[account_id].append(Flow(row.at, row.kind, row.amount, row.balance, row.equity_before))
    equities = await _equities_now(session, list(owners))
    legacy = await _legacy_pnl(session, flows, since)
    weighted: dict[int, list[tuple[float, Decimal]]] = defaultdict(list)
    for account_id, account_flows in flows.items():
        value = time_weighted(account_flows, equities[account_id], since, legacy.get(account_id, Decimal(0)))
        if value is not None:
            weighted[owners[account_id]].append((value, max(equities[account_id], Decimal(0))))
    result: dict[int, float] = {}
    for user_id, values in weighted.items():
        total = sum((weight for _, weight in values), Decimal(0))
        if total > 0:
            result[user_id] = float(sum(Decimal(repr(v)) * w for v, w in values) / total)
        elif len(values) == 1:
            result[user_id] = values[0][0]
    return result


async def _equities_now(session: AsyncSession, account_ids: list[int]) -> dict[int, Decimal]:
    """Cash plus positions at their last prices, for many accounts at once."""
    if not account_ids:
        return {}
    cash = dict((await session.execute(select(Account.id, Account.cash).where(Account.id.in_(account_ids)))).all())
    marks = await margin.marked_positions(session, account_ids)
    return {
        account_id: Decimal(cash[account_id]) + sum((q * p for q, p in marks[account_id].values()), Decimal(0))
        for account_id in account_ids
    }


async def _legacy_pnl(
    session: AsyncSession, flows: dict[int, list[Flow]], since: datetime | None
) -> dict[int, Decimal]:
    """Realised P&L net of commissions, per account, before its first flow with a stored equity (and in
    the window): the part of its history that counts realised P&L only."""
    cutoff = {
        account_id: next((flow.at for flow in account_flows if flow.equity_before is not None), None)
        for account_id, account_flows in flows.items()
        if account_flows and account_flows[0].equity_before is None
    }
    if not cutoff:
        return {}
    fills = select(Fill.account_id, Fill.at, Fill.realized_pnl, Fill.commission).where(Fill.account_id.in_(cutoff))
    if since is not None:
        fills = fills.where(Fill.at >= since)
    pnl: dict[int, Decimal] = defaultdict(Decimal)
    for account_id, at, realized, commission in await session.execute(fills):
        end = cutoff[account_id]
        if end is None or at < end:
            pnl[account_id] += realized - commission
    return pnl
