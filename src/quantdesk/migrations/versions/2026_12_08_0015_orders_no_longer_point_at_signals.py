"""orders no longer point at their signals; the broker's queue is the signal orders that are new

A signal points at the order opening its trade (``order_id``) and the one closing a position first
(``close_order_id``); ``orders.signal_id`` pointed back, which made the two rows refer to each other and
their ids be handed out before either was inserted. The queue's partial indexes now select by the order's
own origin (``source = 'signal'``), and signals are found from their orders by two new indexes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status = 'new' AND source = 'signal'")
WAITING_BEFORE = sa.text("status = 'new' AND signal_id IS NOT NULL")


def _queue_indexes(batch_op: BatchOperations, waiting: sa.TextClause) -> None:
    batch_op.create_index("ix_orders_waiting", ["id"], postgresql_where=waiting, sqlite_where=waiting)
    batch_op.create_index(
        "ix_orders_waiting_by_account", ["account_id", "id"], postgresql_where=waiting, sqlite_where=waiting
    )


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_waiting_by_account")
        batch_op.drop_index("ix_orders_waiting")
        batch_op.drop_constraint("fk_orders_signal_id_signals", type_="foreignkey")
        batch_op.drop_column("signal_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        _queue_indexes(batch_op, WAITING)
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index("ix_signals_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_signals_close_order_id", ["close_order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_close_order_id")
        batch_op.drop_index("ix_signals_order_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_waiting_by_account")
        batch_op.drop_index("ix_orders_waiting")
        batch_op.add_column(sa.Column("signal_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_orders_signal_id_signals", "signals", ["signal_id"], ["id"], ondelete="CASCADE")
    # Each signal order points at its signal again: the orders a signal names, and their bracket legs.
    for column in ("order_id", "close_order_id"):
        op.execute(
            f"UPDATE orders SET signal_id = (SELECT signals.id FROM signals WHERE signals.{column} = orders.id) "  # noqa: S608 - fixed names
            f"WHERE signal_id IS NULL AND id IN (SELECT {column} FROM signals WHERE {column} IS NOT NULL)"
        )
    op.execute(
        "UPDATE orders SET signal_id = (SELECT parent.signal_id FROM orders AS parent WHERE parent.id = orders.parent_id) "
        "WHERE signal_id IS NULL AND parent_id IS NOT NULL"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        _queue_indexes(batch_op, WAITING_BEFORE)
