"""sweeps: who asked for each, and what it costs

A server caps what one sweep may cost (combinations x bars) and how many one user may have queued or
running at once; both need the sweep's owner and cost. Sweeps from before have no owner (they count
against nobody) and a cost of 0.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cost", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_foreign_key(
            batch_op.f("fk_sweeps_owner_id_users"), "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_sweeps_owner_status", ["owner_id", "status"], unique=False)
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.alter_column("cost", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index("ix_sweeps_owner_status")
        batch_op.drop_constraint(batch_op.f("fk_sweeps_owner_id_users"), type_="foreignkey")
        batch_op.drop_column("cost")
        batch_op.drop_column("owner_id")
