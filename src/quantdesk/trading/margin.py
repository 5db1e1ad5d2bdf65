"""The margin rule of short sales and withdrawals: Reg T's initial requirement, and no negative equity.

A short sale credits its proceeds to cash, so cash alone says nothing of what the account could lose.
Reg T asks for 150% of a short position's value at the sale: the proceeds (100%) and 50% more of the
account's own. Here, after any sale that opens or adds to a short, and after any withdrawal:

    equity >= 50% of the short market value, and equity >= 0

where equity is cash plus every position at its last price (a short counts negative) and the short
market value is the sum of |quantity| x last price over short positions. Prices that move later never
liquidate anything: the rule decides only what a sale or a withdrawal may do (see docs/trading.md).
"""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account
from quantdesk.core.errors import InsufficientFunds
from quantdesk.core.money import quantize, text
from quantdesk.market.models import Instrument
from quantdesk.trading import prices
from quantdesk.trading.models import Position

SHORT_EQUITY_SHARE = Decimal("0.5")  # Reg T: 150% of the short value, of which the proceeds are 100%


@dataclass(frozen=True)
class Exposure:
    """The account's positions at their last prices: what they add to equity, and what is short."""

    market_value: Decimal
    short_value: Decimal

    def required(self) -> Decimal:
        return quantize(self.short_value * SHORT_EQUITY_SHARE)


Marks = dict[int, tuple[Decimal, Decimal]]  # instrument id -> (signed quantity, price it is valued at)


async def marked_positions(session: AsyncSession, account_ids: list[int]) -> dict[int, Marks]:
    """Every open position of the accounts with the price it is valued at: the instrument's last price,
    or its average cost when the instrument has none. Three queries whatever the number of accounts;
    positions changed earlier in the transaction (a batch of fills) count as they are now."""
    if not account_ids:
        return {}
    await session.flush()
    held = (
        await session.execute(
            select(Position.account_id, Position.quantity, Position.avg_cost, Instrument)
            .join(Instrument, Instrument.id == Position.instrument_id)
            .where(Position.account_id.in_(account_ids), Position.quantity != 0)
        )
    ).all()
    lasts = await prices.last_prices(session, list({instrument.id: instrument for *_, instrument in held}.values()))
    marks: dict[int, Marks] = {account_id: {} for account_id in account_ids}
    for account_id, quantity, cost, instrument in held:
        mark = lasts[instrument.id].price if instrument.id in lasts else cost
        marks[account_id][instrument.id] = (quantity, mark)
    return marks


async def exposure(
    session: AsyncSession, account: Account, replaced: tuple[int, Decimal, Decimal] | None = None
) -> Exposure:
    """The account's positions at their last prices; ``replaced`` = (instrument id, quantity, price)
    stands for that instrument's position as it would be after a fill at that price."""
    marks = (await marked_positions(session, [account.id]))[account.id]
    if replaced is not None:
        instrument_id, quantity, price = replaced
        marks[instrument_id] = (quantity, price)
    market = sum((quantity * mark for quantity, mark in marks.values()), Decimal(0))
    short = sum((-quantity * mark for quantity, mark in marks.values() if quantity < 0), Decimal(0))
    return Exposure(quantize(market), quantize(short))


async def check_short_sale(
    session: AsyncSession,
    account: Account,
    instrument_id: int,
    quantity_after: Decimal,
    price: Decimal,
    cash_after: Decimal,
) -> None:
    """Raise InsufficientFunds if a sale that leaves ``quantity_after`` (negative: short) of the instrument
    and ``cash_after`` in cash breaks the margin rule."""
    after = await exposure(session, account, (instrument_id, quantity_after, price))
    equity = cash_after + after.market_value
    if equity < after.required():
        raise InsufficientFunds(
            f"short sales need equity of at least 50% of the short market value (Reg T's 150% initial margin): "
            f"after this sale account {account.id} would hold equity {text(quantize(equity))} against a short "
            f"value of {text(after.short_value)}, which needs {text(after.required())}"
        )


def check_withdrawal(account: Account, amount: Decimal, now: Exposure) -> None:
    """Raise InsufficientFunds if withdrawing ``amount`` leaves negative equity, or less than the margin
    rule asks of the account's short positions (``now``: its exposure before the withdrawal)."""
    if amount > account.cash:
        return  # more than the cash: the withdrawal itself refuses it, saying what the account holds
    equity_after = account.cash - amount + now.market_value
    needed = max(now.required(), Decimal(0))
    if equity_after < needed:
        reason = (
            f"its short positions (value {text(now.short_value)}) need equity of {text(needed)}"
            if now.short_value
            else "equity may not go below 0"
        )
        raise InsufficientFunds(
            f"cannot withdraw {text(amount)} {account.currency}: account {account.id} would be left with equity "
            f"{text(quantize(equity_after))}, and {reason}"
        )
