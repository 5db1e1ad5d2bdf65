"""signals: the levels a message gave as distances

"SL 20 pips" is a distance from the price the trade opens at. The intake prices it from the entry or the
last price; when the entry fills, the legs are priced again from the fill price, which needs the distances
themselves. Signals from before have none (their legs keep the prices they were given).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("distances", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("distances")
