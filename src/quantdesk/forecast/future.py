"""The timestamps a forecast predicts: the bars after the origin, on the instrument's trading calendar
(weekends skipped unless the market trades every day, as crypto does)."""

from datetime import datetime, timedelta

from quantdesk.market.intervals import Interval

SATURDAY = 5


def future_times(origin: datetime, interval: Interval, steps: int, every_day: bool) -> list[datetime]:
    step = timedelta(microseconds=interval.micros)
    times: list[datetime] = []
    current = origin
    while len(times) < steps:
        current += step
        if every_day or interval is Interval.w1 or current.weekday() < SATURDAY:
            times.append(current)
    return times
