"""Users, their API keys, paper accounts and the cash ledger."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.money import ExactDecimal
from quantdesk.core.types import UTCTimestamp

ROLES = ("admin", "trader")
LEDGER_KINDS = ("deposit", "withdrawal", "trade", "commission", "reset")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'trader')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40))  # as typed
    username_key: Mapped[str] = mapped_column(String(40), unique=True)  # lower case: names differ by more than case
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(10), default="trader")
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiKey(Base):
    """Only the key's SHA-256 is stored; the prefix finds the row, the digest proves the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)


class Account(Base):
    """A paper account. ``cash`` always equals the sum of its ledger; ``generation`` counts resets."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(10), default="USD")
    cash: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    initial_deposit: Mapped[Decimal] = mapped_column(ExactDecimal)
    allow_short: Mapped[bool] = mapped_column(default=False)
    generation: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    reset_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)


class LedgerEntry(Base):
    """One change of an account's cash: signed amount and the balance after it."""

    __tablename__ = "ledger"
    __table_args__ = (CheckConstraint(f"kind IN ({', '.join(repr(k) for k in LEDGER_KINDS)})", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    balance: Mapped[Decimal] = mapped_column(ExactDecimal)
    # On cash flows (deposit, withdrawal, reset): the account's equity just before it (cash plus positions
    # at their last prices), which time-weighted returns need. Null on trades, and on flows stored before
    # it was kept.
    equity_before: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    generation: Mapped[int] = mapped_column(default=0)
    order_id: Mapped[int | None] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(String(200), default="")
