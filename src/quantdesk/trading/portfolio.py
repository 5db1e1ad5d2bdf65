"""An account's value: cash, positions at their last prices, P&L, and the change since the last close."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.money import quantize
from quantdesk.market.models import Instrument
from quantdesk.trading import prices
from quantdesk.trading.models import Position


@dataclass(frozen=True)
class Holding:
    symbol: str
    quantity: Decimal
    avg_cost: Decimal
    price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    day_change: Decimal


@dataclass(frozen=True)
class Valuation:
    account: Account
    positions: list[Holding]

    @property
    def market_value(self) -> Decimal:
        return sum((h.market_value for h in self.positions), Decimal(0))

    @property
    def equity(self) -> Decimal:
        return self.account.cash + self.market_value

    @property
    def day_change(self) -> Decimal:
        return sum((h.day_change for h in self.positions), Decimal(0))

    @property
    def realized_pnl(self) -> Decimal:
        return sum((h.realized_pnl for h in self.positions), Decimal(0))

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((h.unrealized_pnl for h in self.positions), Decimal(0))


async def value(session: AsyncSession, account: Account) -> Valuation:
    rows = await session.execute(
        select(Position, Instrument)
        .join(Instrument, Instrument.id == Position.instrument_id)
        .where(Position.account_id == account.id)
        .order_by(Instrument.symbol)
    )
    held = [(position, instrument) for position, instrument in rows if position.quantity or position.realized_pnl]
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    lasts = await prices.last_prices(session, [instrument for _, instrument in held])
    closes = await prices.closes_before(session, [instrument.id for _, instrument in held], today)
    holdings = []
    for position, instrument in held:
        last = lasts.get(instrument.id)
        price = last.price if last is not None else None
        mark = price if price is not None else position.avg_cost
        market_value = quantize(position.quantity * mark)
        before = closes.get(instrument.id)
        day = quantize(position.quantity * (mark - before)) if before is not None else Decimal(0)
        holdings.append(
            Holding(
                symbol=instrument.symbol,
                quantity=position.quantity,
                avg_cost=position.avg_cost,
                price=price,
                market_value=market_value,
                unrealized_pnl=quantize(position.quantity * (mark - position.avg_cost)),
                realized_pnl=position.realized_pnl,
                day_change=day,
            )
        )
    return Valuation(account, holdings)


async def holders(session: AsyncSession, instrument_id: int) -> list[int]:
    """Accounts that hold (or are short) the instrument."""
    rows = await session.execute(
        select(Position.account_id, Position.quantity).where(Position.instrument_id == instrument_id)
    )
    return [account_id for account_id, quantity in rows if quantity != 0]
