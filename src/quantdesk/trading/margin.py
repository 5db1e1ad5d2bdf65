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


async def exposure(
    session: AsyncSession, account: Account, replaced: tuple[int, Decimal, Decimal] | None = None
) -> Exposure:
    """The account's positions at their last prices; ``replaced`` = (instrument id, quantity, price)
    stands for that instrument's position as it would be after a fill at that price."""
    await session.flush()  # positions changed earlier in this transaction (a batch of fills) count as they are
    rows = await session.execute(
        select(Position, Instrument)
        .join(Instrument, Instrument.id == Position.instrument_id)
        .where(Position.account_id == account.id)
    )
    held = [(position, instrument) for position, instrument in rows if position.quantity != 0]
    lasts = await prices.last_prices(session, [instrument for _, instrument in held])
    marks = {
        position.instrument_id: (position.quantity, lasts[position.instrument_id].price)
        if position.instrument_id in lasts
        else (position.quantity, position.avg_cost)
        for position, _ in held
    }
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


async def check_withdrawal(session: AsyncSession, account: Account, amount: Decimal) -> None:
    """Raise InsufficientFunds if withdrawing ``amount`` leaves negative equity, or less than the margin
    rule asks of the account's short positions."""
    if amount > account.cash:
        return  # more than the cash: the withdrawal itself refuses it, saying what the account holds
    now = await exposure(session, account)
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
