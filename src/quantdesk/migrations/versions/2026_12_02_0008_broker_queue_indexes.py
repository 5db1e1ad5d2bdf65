"""partial indexes: the signal orders waiting for a broker worker, and the resting orders that expire

They replace ix_orders_queue (status, signal_id), which SQLite preferred for the queue although it made
every claim read and sort the whole backlog.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status = 'new' AND signal_id IS NOT NULL")
RESTING = sa.text("status = 'accepted'")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_queue")
        batch_op.create_index("ix_orders_waiting", ["id"], postgresql_where=WAITING, sqlite_where=WAITING)
        batch_op.create_index(
            "ix_orders_waiting_by_account", ["account_id", "id"], postgresql_where=WAITING, sqlite_where=WAITING
        )
        batch_op.create_index("ix_orders_expiring", ["expires_at"], postgresql_where=RESTING, sqlite_where=RESTING)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_expiring")
        batch_op.drop_index("ix_orders_waiting_by_account")
        batch_op.drop_index("ix_orders_waiting")
        batch_op.create_index("ix_orders_queue", ["status", "signal_id"], unique=False)
