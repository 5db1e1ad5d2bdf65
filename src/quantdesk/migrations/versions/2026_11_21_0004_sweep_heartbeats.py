"""sweep heartbeats: abandoned sweeps are found and rerun

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quantdesk.core.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", quantdesk.core.types.UTCTimestamp(timezone=True), nullable=True))
    # Existing sweeps: their creation time is the last sign of life they gave.
    op.execute("UPDATE sweeps SET heartbeat_at = created_at")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.alter_column(
            "heartbeat_at", existing_type=quantdesk.core.types.UTCTimestamp(timezone=True), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_sweeps_heartbeat_at"), ["heartbeat_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweeps_heartbeat_at"))
        batch_op.drop_column("heartbeat_at")
