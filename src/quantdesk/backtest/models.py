"""Stored backtest runs: what was asked, the metrics, the trades and the equity curve."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.types import UTCTimestamp


class Backtest(Base):
    __tablename__ = "backtests"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(3))
    strategy: Mapped[str] = mapped_column(String(40))
    # A user's rule strategy: its exact version (None for built-ins and installed ones) and its owner, who
    # with admins alone may see the run.
    strategy_version: Mapped[int | None] = mapped_column()
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # The bars the run read: count, first and last time, a hash (a rerun on changed data says so).
    data_fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # cash, costs, sizing, fill, stops
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    trades: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Timestamps (int64 µs) then equity (float64), little-endian: a million-bar curve is 16 MB, not 60 MB of JSON.
    equity_curve: Mapped[bytes] = mapped_column(LargeBinary)


class SweepRun(Base):
    """A research job: a parameter sweep or a walk-forward (``kind``); queued, running (with progress), done
    with its table, failed with a reason, or cancelled."""

    __tablename__ = "sweeps"
    __table_args__ = (Index("ix_sweeps_owner_status", "owner_id", "status"),)  # a user's active jobs

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(3))
    strategy: Mapped[str] = mapped_column(String(40))
    strategy_version: Mapped[int | None] = mapped_column()
    data_fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    rank_by: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done, failed, cancelled
    kind: Mapped[str] = mapped_column(String(16), default="sweep", server_default="sweep")  # sweep, walkforward
    # A walk-forward's windows (train, test, step, mode, metric); its folds go to results, the stitched
    # out-of-sample run, efficiency and stability to summary.
    walkforward: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Who asked for it (None: the command line's operator, or a sweep from before owners were kept), and
    # what it costs: combinations x bars, the unit of the server's cap (QUANTDESK_MAX_SWEEP_COST).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    # Refreshed when the sweep is claimed and after every batch: a queued or running sweep whose heartbeat
    # is stale was abandoned (its server stopped) and any server may claim and rerun it.
    heartbeat_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow, index=True)
    total: Mapped[int] = mapped_column(default=0)
    completed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # every combination, best first
    # The deflated Sharpe ratio of the best Sharpe for the number of combinations tried (selection.py).
    selection: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StoredStrategy(Base):
    """One version of a user's rule strategy. Editing adds a version; deleting marks every version deleted
    (runs keep pointing at theirs, so they stay rerunnable)."""

    __tablename__ = "strategies"
    __table_args__ = (UniqueConstraint("owner_id", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column()
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCTimestamp)
