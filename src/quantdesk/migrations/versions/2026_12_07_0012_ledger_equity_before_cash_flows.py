"""ledger: the account's equity before each deposit, withdrawal and reset

The leaderboard's return is time-weighted: deposits and withdrawals start new periods instead of
counting as performance, and a period's return needs the account's equity at both of its ends. Rows
from before this revision have none; their periods count realised P&L only (docs/metrics.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quantdesk.core.money

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("equity_before", quantdesk.core.money.ExactDecimal(precision=30, scale=10), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_column("equity_before")
