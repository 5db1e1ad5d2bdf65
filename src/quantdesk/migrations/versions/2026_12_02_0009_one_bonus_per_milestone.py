"""gems: a user earns each milestone once

Two accounts of one user filling at the same moment could both earn the same milestone's bonus. Such
duplicates (all but the first row of a user's milestone) are removed before the unique index is made.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MILESTONE = sa.text("reason LIKE 'milestone:%'")


def upgrade() -> None:
    op.execute(
        "DELETE FROM gems WHERE reason LIKE 'milestone:%' AND id NOT IN "
        "(SELECT min(id) FROM gems WHERE reason LIKE 'milestone:%' GROUP BY user_id, reason)"
    )
    with op.batch_alter_table("gems", schema=None) as batch_op:
        batch_op.create_index(
            "uq_gems_milestone",
            ["user_id", "reason"],
            unique=True,
            postgresql_where=MILESTONE,
            sqlite_where=MILESTONE,
        )


def downgrade() -> None:
    with op.batch_alter_table("gems", schema=None) as batch_op:
        batch_op.drop_index("uq_gems_milestone")
