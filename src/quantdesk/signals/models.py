"""Webhook tokens, received signals (the trades they open) and each signal's status history."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.money import ExactDecimal
from quantdesk.core.types import UTCTimestamp

# pending: stored with its order, not executed yet; executed: its trade is open (or, for a close signal,
# the position it closed is flat); closed: its trade was closed; duplicate: a resend of an earlier signal.
STATUSES = ("pending", "executed", "closed", "rejected", "cancelled", "duplicate")
FINAL_STATUSES = ("closed", "rejected", "cancelled", "duplicate")
SOURCES = ("webhook", "api")


class WebhookToken(Base):
    """A secret URL that posts signals to one account; only its SHA-256 is stored."""

    __tablename__ = "webhook_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)


class Signal(Base):
    """One received message, kept with its raw body whatever became of it, and the trade it opened."""

    __tablename__ = "signals"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index("ix_signals_account_received", "account_id", "received_at"),
        Index("ix_signals_copies", "copy_key", "received_at"),
        Index("ix_signals_open_trades", "account_id", "instrument_id", "status"),
        Index("ix_signals_order_id", "order_id"),
        Index("ix_signals_close_order_id", "close_order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_tokens.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(8))
    raw_body: Mapped[str] = mapped_column(Text)
    body_hash: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(100))  # the body's own id, for resends
    # Set when accepted: its account with its id field (or else its body) hashed, under which copies find it.
    copy_key: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("signals.id", ondelete="SET NULL"))
    format: Mapped[str | None] = mapped_column(String(24))
    side: Mapped[str | None] = mapped_column(String(5))  # buy, sell, close
    symbol: Mapped[str | None] = mapped_column(String(32))
    instrument_id: Mapped[int | None] = mapped_column(ForeignKey("instruments.id", ondelete="SET NULL"))
    entry: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    stop_loss: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    take_profit: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Levels the message gave as distances (pips, points, percent): the legs are priced again from the
    # entry's fill price (signals.distances).
    distances: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    quantity: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    order_type: Mapped[str | None] = mapped_column(String(8))
    # The order opening this signal's trade (for a close signal: its closing order), and the one closing the
    # position it reverses first. Plain ids, as when orders pointed back at their signals (SQLite cannot add
    # a constraint to an existing table); both go with their account. The orders' own lifecycle finds its
    # signal by these (signals.lifecycle.signal_of).
    order_id: Mapped[int | None] = mapped_column()
    close_order_id: Mapped[int | None] = mapped_column()
    # The trade: at what price it opened and closed, through which order, and its net P&L.
    entry_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    exit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    exit_order_id: Mapped[int | None] = mapped_column()
    realized_pnl: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    received_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    executed_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    closed_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)


class SignalEvent(Base):
    __tablename__ = "signal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))
