"""Parse the instants people type into query strings and CLI options."""

from datetime import UTC, date, datetime

from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import MAX_EPOCH_US, to_epoch_us

DAY_US = 86_400_000_000


def parse_instant(text: str, name: str) -> datetime:
    """An ISO 8601 date or datetime; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValidationFailed(
            f"{name}='{text}' is not a date; use ISO 8601 such as 2024-01-31 or 2024-01-31T09:30:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def range_bounds(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """Inclusive ``start``/``end`` text as [start, end) microseconds; a date-only end covers its day."""
    start_us = to_epoch_us(parse_instant(start, "start")) if start else None
    end_us = None
    if end:
        # In microseconds, not datetimes: the day after 9999-12-31 is not a datetime.
        end_us = to_epoch_us(parse_instant(end, "end")) + (DAY_US if is_date_only(end) else 1)
    if start_us is not None and end_us is not None and start_us >= end_us:
        raise ValidationFailed(f"start={start} is after end={end}; swap them")
    # A bound beyond the storable range bounds nothing; dropping it keeps every database happy.
    if end_us is not None and end_us > MAX_EPOCH_US:
        end_us = None
    return start_us, end_us
