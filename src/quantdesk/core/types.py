"""Column types shared by every domain."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import annotated_types
from pydantic import AfterValidator, Field
from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Years 1 to 9999: what Python's datetime, ISO 8601 and both databases all represent.
MAX_ROW_ID = 2_147_483_647  # PostgreSQL's integer: an id past it cannot exist, and must not reach a query
RowId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(MAX_ROW_ID)]
"""The id of a stored row, as a request names it: anything else is a 422, not a database error."""
MIN_EPOCH_US = -62_135_596_800_000_000
MAX_EPOCH_US = 253_402_300_799_999_999


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a time written without an offset is taken as UTC (as the bar endpoints read it)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-01:00 is in the year 10000 in UTC
        raise ValueError(f"{value.isoformat()} is outside years 1 to 9999 in UTC") from None


UtcInstant = Annotated[
    datetime,
    AfterValidator(as_utc),
    Field(description="ISO 8601 date or datetime; without an offset it is read as UTC."),
]
"""An instant a client sends (query or body): always aware UTC afterwards, a 422 when it cannot be."""


def to_epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware datetime."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; quantdesk stores UTC")
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


class UTCTimestamp(TypeDecorator[datetime]):
    """Timezone-aware UTC instant.

    PostgreSQL keeps a native ``timestamptz``. SQLite has no timestamp type, and parsing ISO
    strings dominates range reads there, so it stores integer microseconds since the epoch:
    ordered, compact, and read straight into numpy.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_epoch_us(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_epoch_us(value)
        return cast(datetime, value).astimezone(UTC)
