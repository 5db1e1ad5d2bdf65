"""Tables of the market-data domain: instruments and their OHLCV bars."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Double, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.types import UTCTimestamp


class AssetClass(StrEnum):
    stock = "stock"
    crypto = "crypto"
    fx = "fx"
    commodity = "commodity"
    index = "index"  # type: ignore[assignment]  # shadows str.index on purpose: the value users send


ASSET_CLASS_VALUES = ", ".join(f"'{a.value}'" for a in AssetClass)


class Instrument(Base):
    __tablename__ = "instruments"
    __table_args__ = (
        CheckConstraint(f"asset_class IN ({ASSET_CLASS_VALUES})", name="asset_class"),
        CheckConstraint("price_precision BETWEEN 0 AND 12", name="price_precision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored upper-case: that is what makes the symbol unique case-insensitively on both databases.
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    asset_class: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(10), default="USD")
    exchange: Mapped[str | None] = mapped_column(String(64))
    price_precision: Mapped[int | None] = mapped_column(SmallInteger)
    # Whether paper orders may trade fractions of a unit; unset: crypto and fx do, the rest do not.
    fractional: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow, onupdate=utcnow)

    @property
    def allows_fractional(self) -> bool:
        if self.fractional is not None:
            return self.fractional
        return self.asset_class in (AssetClass.crypto, AssetClass.fx)


class Bar(Base):
    """One OHLCV bar. The primary key is also the upsert target and the range-scan index."""

    __tablename__ = "bars"
    # Clustered on the key in SQLite: range reads walk one b-tree instead of index + table.
    __table_args__ = ({"sqlite_with_rowid": False},)

    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    interval: Mapped[str] = mapped_column(String(3), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCTimestamp, primary_key=True)
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    volume: Mapped[float] = mapped_column(Double)
