"""How many bars make a year, per interval and market calendar (for annualising)."""

from dataclasses import dataclass

from quantdesk.market.intervals import Interval

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class MarketCalendar:
    """Trading days per year and trading hours per day of one kind of market."""

    trading_days: float
    session_hours: float


DEFAULT_CALENDARS = {
    "stock": MarketCalendar(252, 6.5),
    "index": MarketCalendar(252, 6.5),
    "commodity": MarketCalendar(252, 23),
    "fx": MarketCalendar(260, 24),
    "crypto": MarketCalendar(365, 24),
}


def periods_per_year(interval: Interval, calendar: MarketCalendar) -> float:
    """Bars per year: trading days for 1d, 52 for 1w, bars per session times trading days intraday."""
    if interval is Interval.w1:
        return 52.0
    if interval is Interval.d1:
        return calendar.trading_days
    minutes = interval.micros / 60_000_000
    bars_per_day = min(calendar.session_hours * 60, MINUTES_PER_DAY) / minutes
    return bars_per_day * calendar.trading_days
