"""Parse the instants people type into query strings and CLI options."""

from datetime import UTC, date, datetime

from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import MAX_EPOCH_US, MIN_EPOCH_US, as_utc, to_epoch_us

DAY_US = 86_400_000_000


def parse_instant(text: str, name: str) -> datetime:
    """An ISO 8601 date or datetime; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValidationFailed(
            f"{name}='{text}' is not a date; use ISO 8601 such as 2024-01-31 or 2024-01-31T09:30:00Z"
        ) from None
    try:
        return as_utc(parsed)
    except ValueError as error:
        raise ValidationFailed(f"{name}='{text}': {error}") from None


def parse_epoch_us(text: str, name: str) -> int:
    """``text`` (as ``parse_instant`` reads it) in microseconds since the epoch. Unlike a datetime, this
    can hold an instant that is in year 0 or 10000 in UTC (0001-01-01T00:00+01:00): a range bound."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        parse_instant(text, name)  # raises the message that says how to write it
        raise
    return to_epoch_us(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC))


def is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def range_bounds(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """Inclusive ``start``/``end`` text as [start, end) microseconds; a date-only end covers its day."""
    start_us = parse_epoch_us(start, "start") if start else None
    end_us = None
    if end:
        # In microseconds, not datetimes: the day after 9999-12-31 is not a datetime.
        end_us = parse_epoch_us(end, "end") + (DAY_US if is_date_only(end) else 1)
    if start_us is not None and end_us is not None and start_us >= end_us:
        raise ValidationFailed(f"start={start} is after end={end}; swap them")
    # A bound beyond the storable range bounds nothing; dropping it keeps every database happy.
    if end_us is not None and end_us > MAX_EPOCH_US:
        end_us = None
    if start_us is not None and start_us < MIN_EPOCH_US:
        start_us = None
    return start_us, end_us
