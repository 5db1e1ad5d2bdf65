"""Last prices, orders with their status history, fills and positions."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Index, String, UniqueConstraint, and_, literal_column
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.money import ExactDecimal
from quantdesk.core.types import UTCTimestamp

SIDES = ("buy", "sell")
TYPES = ("market", "limit", "stop", "stop_limit")
TIME_IN_FORCE = ("day", "gtc", "ioc", "fok")
STATUSES = ("new", "accepted", "partially_filled", "filled", "canceled", "expired", "rejected")
OPEN_STATUSES = ("new", "accepted", "partially_filled")
# An entry; its bracket legs; or "close": the whole position in the instrument, sized when it executes.
LEGS = ("entry", "take_profit", "stop_loss", "close")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=column)


class Price(Base):
    """An instrument's last price: from its newest bar, a tick, or an admin."""

    __tablename__ = "prices"

    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    source: Mapped[str] = mapped_column(String(8))  # bar, tick, admin
    at: Mapped[datetime] = mapped_column(UTCTimestamp)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id"),
        Index("ix_orders_instrument_status", "instrument_id", "status"),
        _one_of("side", SIDES),
        _one_of("type", TYPES),
        _one_of("time_in_force", TIME_IN_FORCE),
        _one_of("status", STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(10))
    time_in_force: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    limit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    status: Mapped[str] = mapped_column(String(16), default="new")
    reason: Mapped[str | None] = mapped_column(String(300))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    leg: Mapped[str] = mapped_column(String(12), default="entry")
    has_legs: Mapped[bool] = mapped_column(default=False)  # an entry with a take-profit or stop-loss
    # api, cli, dashboard, replay, or signal: a signal's orders wait in the broker's queue until a worker
    # executes them (signals point at their orders; an order does not point back).
    source: Mapped[str] = mapped_column(String(12), default="api")
    generation: Mapped[int] = mapped_column(default=0)
    filled_quantity: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    filled_avg_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    commission: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))  # signed change of cash
    stop_triggered_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    expires_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    filled_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)


# Partial indexes hold only the rows a hot query looks for, so finding them costs the same however many
# orders are done: the signal orders waiting for a broker worker, and the orders resting in the book
# (those of them with an expiry, for the day orders to expire). Their conditions are in literals: a bound
# parameter cannot prove to a planner that a row is in a partial index.
WAITING_FOR_BROKER = and_(Order.status == literal_column("'new'"), Order.source == literal_column("'signal'"))
RESTING = Order.status == literal_column("'accepted'")


def _partial_index(name: str, where: ColumnElement[bool], *columns: InstrumentedAttribute[Any]) -> Index:
    return Index(name, *columns, postgresql_where=where, sqlite_where=where)


_partial_index("ix_orders_waiting", WAITING_FOR_BROKER, Order.id)
_partial_index("ix_orders_waiting_by_account", WAITING_FOR_BROKER, Order.account_id, Order.id)
_partial_index("ix_orders_expiring", RESTING, Order.expires_at)


class OrderEvent(Base):
    """Every status an order passed through, when, and why."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))


class Fill(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    commission: Mapped[Decimal] = mapped_column(ExactDecimal)
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    generation: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow, index=True)


class Position(Base):
    """Signed quantity (negative when short), average cost of what is held, and P&L realised so far."""

    __tablename__ = "positions"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    avg_cost: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
