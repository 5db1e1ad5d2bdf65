"""Request and response bodies of the market-data API."""

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator

from quantdesk.market.intervals import Interval
from quantdesk.market.models import AssetClass

SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9._\-^=!:]{0,31}$"
SYMBOL_RULE = "letters, digits and . _ - ^ = ! : (no spaces or slashes), 1 to 32 characters"


def _check_symbol(value: str) -> str:
    if not re.fullmatch(SYMBOL_PATTERN, value):
        # Quoted by repr: a value that is no text at all (a lone surrogate, "\ud800") is shown escaped,
        # as the message itself must encode.
        shown = f"'{value}'" if value.isprintable() else ascii(value)
        raise ValueError(f"symbol {shown} is not valid: use {SYMBOL_RULE}, e.g. AAPL, BTCUSD or ^GSPC")
    return value


Symbol = Annotated[
    str,
    AfterValidator(_check_symbol),
    Field(
        json_schema_extra={"pattern": SYMBOL_PATTERN},
        description=f"Ticker: {SYMBOL_RULE}; stored upper-case.",
        examples=["AAPL", "BTCUSD", "^GSPC"],
    ),
]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3,10}$", examples=["USD"])]


class InstrumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    name: str | None = Field(default=None, max_length=200)
    asset_class: AssetClass | None = None
    currency: Currency = "USD"
    exchange: str | None = Field(default=None, max_length=64)
    price_precision: int | None = Field(default=None, ge=0, le=12)
    fractional: bool | None = Field(default=None, description="Paper orders in fractions; default: crypto and fx.")

    @field_validator("symbol", "currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class InstrumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol | None = None
    name: str | None = Field(default=None, max_length=200)
    asset_class: AssetClass | None = None
    currency: Currency | None = None
    exchange: str | None = Field(default=None, max_length=64)
    price_precision: int | None = Field(default=None, ge=0, le=12)
    fractional: bool | None = None

    @field_validator("symbol", "currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None


class SeriesRead(BaseModel):
    interval: Interval
    first: datetime
    last: datetime
    count: int


class InstrumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    symbol: str
    name: str | None
    asset_class: AssetClass | None
    currency: str
    exchange: str | None
    price_precision: int | None
    allows_fractional: bool
    created_at: datetime
    updated_at: datetime
    last_price: float | None = Field(default=None, description="Close of the most recently closing bar.")
    last_price_at: datetime | None = Field(default=None, description="Open time of that bar.")
    last_price_interval: Interval | None = None


class InstrumentDetail(InstrumentRead):
    series: list[SeriesRead] = Field(description="Stored date range and bar count per interval.")


class BarIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timestamp: datetime = Field(
        validation_alias=AliasChoices("timestamp", "ts", "time", "date", "datetime"),
        description="Bar open time, ISO 8601 (naive means UTC) or epoch seconds.",
    )
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


class BarOut(BaseModel):
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarPage(BaseModel):
    symbol: str
    interval: Interval
    count: int
    bars: list[BarOut]
    next_cursor: str | None = Field(description="Pass as cursor= for the next page; null on the last page.")


class IngestResult(BaseModel):
    symbol: str
    interval: Interval
    interval_source: Literal["given", "inferred"]
    format: str | None = Field(default=None, description="CSV layout detected: yahoo, stooq, binance or plain.")
    received: int
    inserted: int
    updated: int
    unchanged: int
    first: datetime | None
    last: datetime | None
    notes: list[str] = Field(default_factory=list)
