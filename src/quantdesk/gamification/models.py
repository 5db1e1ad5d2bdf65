"""The gem ledger: every gem has a row that says why it was given."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base
from quantdesk.core.types import UTCTimestamp


class GemEntry(Base):
    __tablename__ = "gems"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    order_id: Mapped[int | None] = mapped_column()
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(String(40))  # "trade", "milestone:10"
    at: Mapped[datetime] = mapped_column(UTCTimestamp, default=utcnow, index=True)


# A user earns each milestone once: two accounts of the user filling at the same moment both count the
# same Nth trade, and the second bonus is refused by this index (awards inserts ON CONFLICT DO NOTHING).
MILESTONE = GemEntry.reason.like(literal_column("'milestone:%'"))
Index(
    "uq_gems_milestone",
    GemEntry.user_id,
    GemEntry.reason,
    unique=True,
    postgresql_where=MILESTONE,
    sqlite_where=MILESTONE,
)
