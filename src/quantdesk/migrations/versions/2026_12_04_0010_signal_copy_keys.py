"""signals: the key under which a resent signal finds its first copy

Duplicate suppression read the earlier copies by account with their id field or body hash. PostgreSQL
planned that by the account alone whenever it had no statistics of the table yet (a new database taking
a burst of signals), which read every signal of the account for each batch. The key (the account and
the id field, or else the body, hashed) is one column with an index of its own, so the lookup has one
way to go. Accepted signals get theirs here; rejected ones and duplicates never count as first copies.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:00:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 5_000


def copy_key(account_id: int, external_id: str | None, body_hash: str) -> int:
    # As quantdesk.signals.copies.lock_key computes it; kept here so that this migration never changes.
    digest = hashlib.sha256(f"{account_id}:{external_id or body_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def upgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy_key", sa.BigInteger(), nullable=True))
    _backfill()
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_account_body")
        batch_op.drop_index("ix_signals_account_external")
        batch_op.create_index("ix_signals_copies", ["copy_key", "received_at"], unique=False)


def _backfill() -> None:
    connection = op.get_bind()
    signals = sa.table(
        "signals",
        sa.column("id", sa.Integer),
        sa.column("account_id", sa.Integer),
        sa.column("external_id", sa.String),
        sa.column("body_hash", sa.String),
        sa.column("status", sa.String),
        sa.column("copy_key", sa.BigInteger),
    )
    accepted = (
        sa.select(signals.c.id, signals.c.account_id, signals.c.external_id, signals.c.body_hash)
        .where(signals.c.status.not_in(("rejected", "duplicate")))
        .order_by(signals.c.id)
    )
    update = sa.update(signals).where(signals.c.id == sa.bindparam("row_id")).values(copy_key=sa.bindparam("key"))
    last_id = 0
    while True:
        rows = connection.execute(accepted.where(signals.c.id > last_id).limit(BACKFILL_BATCH)).all()
        if not rows:
            return
        connection.execute(update, [{"row_id": row.id, "key": copy_key(*row[1:])} for row in rows])
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_copies")
        batch_op.create_index("ix_signals_account_external", ["account_id", "external_id"], unique=False)
        batch_op.create_index("ix_signals_account_body", ["account_id", "body_hash"], unique=False)
        batch_op.drop_column("copy_key")
