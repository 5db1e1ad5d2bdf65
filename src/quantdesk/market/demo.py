"""The offline demo data set: six synthetic instruments across asset classes.

Ten years of daily bars each, and one year of 1-minute bars for BTCUSD whose daily bars for that
year are the exact aggregation of its minutes, so every interval tells the same story. Every
instrument is named "(synthetic)" and listed on the exchange "SYNTHETIC".
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.types import to_epoch_us
from quantdesk.market import repository
from quantdesk.market.bars import BarArrays
from quantdesk.market.ingest import IngestReport, store_bars
from quantdesk.market.intervals import DAY_US, Interval
from quantdesk.market.models import AssetClass
from quantdesk.market.providers.synthetic import MINUTES_PER_YEAR, SeriesSpec, bar_times, generate_bars
from quantdesk.market.schemas import InstrumentCreate
from quantdesk.market.service import ensure_instrument

EXCHANGE = "SYNTHETIC"
YEARS = 10
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class DemoInstrument:
    instrument: InstrumentCreate
    spec: SeriesSpec
    seed: int
    weekdays_only: bool


def _instrument(symbol: str, name: str, asset_class: AssetClass, precision: int) -> InstrumentCreate:
    return InstrumentCreate(
        symbol=symbol,
        name=f"{name} (synthetic)",
        asset_class=asset_class,
        currency="USD",
        exchange=EXCHANGE,
        price_precision=precision,
    )


DEMO_SET = (
    DemoInstrument(
        _instrument("ACME", "Acme Corp", AssetClass.stock, 2),
        SeriesSpec(start_price=50.0, annual_drift=0.09, annual_volatility=0.28),
        101,
        True,
    ),
    DemoInstrument(
        _instrument("GLOBEX", "Globex Corporation", AssetClass.stock, 2),
        SeriesSpec(start_price=120.0, annual_drift=0.05, annual_volatility=0.22),
        102,
        True,
    ),
    DemoInstrument(
        _instrument("SYNX", "Synthetic 500 Index", AssetClass.index, 2),
        SeriesSpec(start_price=2000.0, annual_drift=0.07, annual_volatility=0.16, base_volume=3e9),
        103,
        True,
    ),
    DemoInstrument(
        _instrument("EURUSD", "Euro / US Dollar", AssetClass.fx, 5),
        SeriesSpec(start_price=1.10, annual_drift=0.0, annual_volatility=0.07, base_volume=1e5, periods_per_year=260),
        104,
        True,
    ),
    DemoInstrument(
        _instrument("XAUUSD", "Gold spot", AssetClass.commodity, 2),
        SeriesSpec(
            start_price=1250.0, annual_drift=0.05, annual_volatility=0.15, base_volume=2e5, periods_per_year=260
        ),
        105,
        True,
    ),
    DemoInstrument(
        _instrument("BTCUSD", "Bitcoin / US Dollar", AssetClass.crypto, 2),
        SeriesSpec(start_price=400.0, annual_drift=0.45, annual_volatility=0.70, base_volume=2e4, periods_per_year=365),
        106,
        False,
    ),
)
MINUTE_SYMBOL = "BTCUSD"
DEMO_SYMBOLS = tuple(d.instrument.symbol for d in DEMO_SET)
Progress = Callable[[str, int], None]


def daily_series(demo: DemoInstrument, end: date) -> BarArrays:
    end_us = to_epoch_us(datetime.combine(end, time.min, tzinfo=UTC))
    start_us = end_us - YEARS * 365 * DAY_US
    per_year = 261 if demo.weekdays_only else 365
    times = bar_times(start_us, YEARS * per_year + 5, Interval.d1, demo.weekdays_only)
    times = times[times < end_us]
    return generate_bars(demo.spec, times, demo.seed)


def minute_series(demo: DemoInstrument, end: date, start_price: float) -> BarArrays:
    """One year of 1-minute bars ending at ``end`` 00:00 UTC, starting from ``start_price``."""
    end_us = to_epoch_us(datetime.combine(end, time.min, tzinfo=UTC))
    times = end_us - 60_000_000 * np.arange(MINUTES_PER_YEAR, 0, -1, dtype=np.int64)
    spec = SeriesSpec(
        start_price=start_price,
        annual_drift=demo.spec.annual_drift,
        annual_volatility=demo.spec.annual_volatility,
        switch_probability=1 / 2000,
        base_volume=demo.spec.base_volume / MINUTES_PER_DAY,
        periods_per_year=MINUTES_PER_YEAR,
    )
    minutes = generate_bars(spec, times, demo.seed + 1_000)
    # Independent minute volumes would sum to an almost constant daily volume; real days differ, so
    # each day's minutes share one seeded activity factor.
    activity = np.random.default_rng(demo.seed + 2_000).lognormal(0.0, 0.4, times.size // MINUTES_PER_DAY)
    volume = np.round(minutes.volume * np.repeat(activity, MINUTES_PER_DAY))
    return BarArrays(minutes.ts, minutes.open, minutes.high, minutes.low, minutes.close, volume)


def aggregate_days(minutes: BarArrays) -> BarArrays:
    """Daily bars from whole days of 1-minute bars starting at midnight."""
    shape = (-1, MINUTES_PER_DAY)
    return BarArrays.from_columns(
        ts=minutes.ts.reshape(shape)[:, 0],
        open=minutes.open.reshape(shape)[:, 0],
        high=minutes.high.reshape(shape).max(axis=1),
        low=minutes.low.reshape(shape).min(axis=1),
        close=minutes.close.reshape(shape)[:, -1],
        volume=minutes.volume.reshape(shape).sum(axis=1),
    )


def _join(history: BarArrays, recent: BarArrays) -> BarArrays:
    keep = history.ts < recent.ts[0]
    return BarArrays(*(np.concatenate((a[keep], b)) for a, b in zip(history.columns(), recent.columns(), strict=True)))


async def is_empty(session: AsyncSession) -> bool:
    return not await repository.list_instruments(session)


async def load_demo(
    session: AsyncSession, end: date, with_minutes: bool = True, progress: Progress | None = None
) -> list[IngestReport]:
    """Create the demo instruments and store their bars (idempotent: a reload updates nothing)."""
    reports = []
    for demo in DEMO_SET:
        instrument = await ensure_instrument(session, demo.instrument)
        daily = daily_series(demo, end)
        if demo.instrument.symbol == MINUTE_SYMBOL:
            # The minutes are always generated so the daily bars are the same with or without them.
            start_index = int(np.searchsorted(daily.ts, daily.ts[-1] - 364 * DAY_US))
            minutes = minute_series(demo, end, float(daily.close[start_index - 1]))
            daily = _join(daily, aggregate_days(minutes))
            if with_minutes:
                reports.append(await store_bars(session, instrument, minutes, Interval.m1))
                if progress:
                    progress(f"{instrument.symbol} 1m", len(minutes))
        reports.append(await store_bars(session, instrument, daily, Interval.d1))
        if progress:
            progress(f"{instrument.symbol} 1d", len(daily))
    return reports


DEMO_USERS = (("admin", "admin", None), ("alice", "trader", "Alice (demo)"), ("bob", "trader", "Bob (demo)"))
DEMO_TRADES = {"alice": (("ACME", "20"), ("BTCUSD", "0.5")), "bob": (("GLOBEX", "50"),)}


async def load_demo_users(session: AsyncSession) -> list[tuple[str, str, str | None]]:
    """An admin and two traders with a 100,000 USD account and a few filled trades each; returns
    (username, role, API key) for the users created now (existing users keep their keys)."""
    from decimal import Decimal

    from quantdesk.accounts import service as accounts
    from quantdesk.core.config import get_settings
    from quantdesk.trading import service as trading
    from quantdesk.trading.schemas import OrderCreate

    created: list[tuple[str, str, str | None]] = []
    for username, role, display in DEMO_USERS:
        if await accounts.user_exists(session, username):
            created.append((username, role, None))
            continue
        user, key = await accounts.create_user(session, username, display, role)
        created.append((username, role, key))
        if role != "trader":
            continue
        account = await accounts.open_account(session, user, "demo", "USD", Decimal(100_000))
        for symbol, quantity in DEMO_TRADES[username]:
            body = OrderCreate(account_id=account.id, symbol=symbol, side="buy", quantity=Decimal(quantity))
            await trading.place_order(session, accounts.principal_of(user), body, get_settings(), "demo")
    return created
