"""backtest: users' rule strategies (versioned), which version and bars each run used, walk-forward jobs

A user's rule strategy is stored per version; a backtest records its owner and the version it ran (so it
can be rerun and is shown to its owner and admins only), and backtests and sweeps record a fingerprint of
the bars they read (count, first and last time, hash); a sweep stores the deflated Sharpe ratio of its best row. Walk-forwards are research jobs in the same table
(kind, their windows, and a summary next to the per-fold results).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 22:28:43
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quantdesk.core.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "strategies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", quantdesk.core.types.UTCTimestamp(timezone=True), nullable=False),
        sa.Column("deleted_at", quantdesk.core.types.UTCTimestamp(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_strategies_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategies")),
        sa.UniqueConstraint("owner_id", "name", "version", name=op.f("uq_strategies_owner_id")),
    )
    with op.batch_alter_table("strategies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_strategies_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("data_fingerprint", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_backtests_owner_id"), ["owner_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_backtests_owner_id_users"), "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("data_fingerprint", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("selection", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="sweep", nullable=False))
        batch_op.add_column(sa.Column("walkforward", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_column("summary")
        batch_op.drop_column("walkforward")
        batch_op.drop_column("kind")
        batch_op.drop_column("selection")
        batch_op.drop_column("data_fingerprint")
        batch_op.drop_column("strategy_version")

    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_backtests_owner_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_backtests_owner_id"))
        batch_op.drop_column("data_fingerprint")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("strategy_version")

    with op.batch_alter_table("strategies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_strategies_owner_id"))

    op.drop_table("strategies")
