"""Stored bars played back as live prices, so that a demo account trades by itself.

Each bar's close becomes the instrument's last price (source ``replay``), in its own transaction, so
resting orders, brackets and signal trades react exactly as they would to a live tick; the wait between
two bars is their real distance divided by ``speed``.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quantdesk.core.db import session_scope
from quantdesk.core.errors import NotFound, ValidationFailed
from quantdesk.market.models import Bar, Instrument
from quantdesk.trading import prices

PAGE = 1_000


@dataclass(frozen=True)
class Played:
    at: datetime  # the bar's time
    price: Decimal
    filled: int  # resting orders the price filled


async def _bars(
    factory: async_sessionmaker[AsyncSession], instrument_id: int, interval: str, start: datetime, end: datetime | None
) -> AsyncIterator[tuple[datetime, float]]:
    after = start
    first = True
    while True:
        query = select(Bar.ts, Bar.close).where(Bar.instrument_id == instrument_id, Bar.interval == interval)
        query = query.where(Bar.ts >= after if first else Bar.ts > after)
        if end is not None:
            query = query.where(Bar.ts < end)
        async with factory() as session:
            rows = (await session.execute(query.order_by(Bar.ts).limit(PAGE))).all()
        for ts, close in rows:
            yield ts, close
        if len(rows) < PAGE:
            return
        after, first = rows[-1][0], False


async def replay(
    factory: async_sessionmaker[AsyncSession],
    symbol: str,
    start: datetime,
    speed: float,
    interval: str = "1d",
    end: datetime | None = None,
    played: Callable[[Played], None] = lambda _: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Play the bars from ``start``; returns how many were played."""
    if speed <= 0:
        raise ValidationFailed(f"speed must be above 0 (60 plays a minute per second), not {speed:g}")
    async with factory() as session:
        instrument = await session.scalar(select(Instrument).where(Instrument.symbol == symbol.upper()))
    if instrument is None:
        raise NotFound(f"no instrument '{symbol.upper()}'")
    count, previous = 0, None
    async for ts, close in _bars(factory, instrument.id, interval, start, end):
        if previous is not None:
            await sleep((ts - previous).total_seconds() / speed)
        async with session_scope(factory, write=True) as session:
            current = await session.get(Instrument, instrument.id)
            if current is None:
                raise NotFound(f"'{symbol.upper()}' was deleted during the replay")
            price = Decimal(repr(close))
            filled = await prices.set_price(session, current, price, "replay")
        played(Played(ts, price, filled))
        count, previous = count + 1, ts
    if count == 0:
        raise NotFound(f"{symbol.upper()} has no {interval} bars from {start:%Y-%m-%d %H:%M}")
    return count
