"""Duplicate suppression: a signal sent again (the same ``id`` field on the account, or the same body on
the same webhook within the window) creates one signal; the copies are kept as duplicates of the first.

Copies arriving together (a sender's retry storm, over several server processes) are checked one after
the other: on PostgreSQL a batch first takes a transaction lock on each of its signals' keys, in key
order (so two batches never wait for each other crosswise), then reads the earlier copies, which a
concurrent batch holding the same key has committed by then. SQLite's writers are serialised already.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, BigInteger, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.db import dialect_name
from quantdesk.signals.models import Signal


@dataclass(frozen=True)
class Copy:
    """An accepted signal that later ones may repeat."""

    id: int
    account_id: int
    token_id: int | None
    external_id: str | None
    body_hash: str
    received_at: datetime


def lock_key(signal: Signal) -> int:
    """The transaction lock of the signal's copies: its account and its id field, or else its body."""
    digest = hashlib.sha256(f"{signal.account_id}:{signal.external_id or signal.body_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_KEYS = func.unnest(bindparam("keys", type_=ARRAY(BigInteger))).table_valued("key").render_derived("locked")
_LOCK_KEYS = select(func.pg_advisory_xact_lock(_KEYS.c.key))
_LIVE = (Signal.status != "rejected", Signal.status != "duplicate")
_EARLIER = select(
    Signal.id, Signal.account_id, Signal.token_id, Signal.external_id, Signal.body_hash, Signal.received_at
).where(
    Signal.account_id.in_(bindparam("accounts", expanding=True)),
    *_LIVE,
    or_(
        Signal.external_id.in_(bindparam("external_ids", expanding=True)),
        and_(Signal.body_hash.in_(bindparam("hashes", expanding=True)), Signal.received_at >= bindparam("since")),
    ),
)


class Copies:
    """The accepted signals that the signals of one transaction may repeat: those stored before it, and
    those it accepts itself."""

    def __init__(self, earlier: list[Copy], window_s: float) -> None:
        self._accepted = sorted(earlier, key=lambda copy: copy.id)
        self._window = timedelta(seconds=window_s)

    @classmethod
    async def load(cls, session: AsyncSession, signals: Sequence[Signal], window_s: float) -> "Copies":
        """Lock the keys of ``signals`` (PostgreSQL) and read the earlier copies any of them may repeat."""
        if not signals:
            return cls([], window_s)
        if dialect_name(session) == "postgresql":
            await session.execute(_LOCK_KEYS, {"keys": sorted({lock_key(signal) for signal in signals})})
        values = {
            "accounts": sorted({signal.account_id for signal in signals}),
            "external_ids": sorted({signal.external_id for signal in signals if signal.external_id is not None}),
            "hashes": sorted({signal.body_hash for signal in signals if signal.external_id is None}),
            "since": min(signal.received_at for signal in signals) - timedelta(seconds=window_s),
        }
        return cls([Copy(*row) for row in await session.execute(_EARLIER, values)], window_s)

    def first_of(self, signal: Signal) -> Copy | None:
        """The first accepted signal that ``signal`` repeats: the same id on the account, or the same body
        on the same webhook (through the API: on the same account) within the window."""
        return next((copy for copy in self._accepted if self._repeats(signal, copy)), None)

    def accept(self, signal: Signal) -> None:
        """``signal`` is accepted in this transaction: later ones of it may repeat it."""
        self._accepted.append(
            Copy(
                signal.id,
                signal.account_id,
                signal.token_id,
                signal.external_id,
                signal.body_hash,
                signal.received_at,
            )
        )

    def _repeats(self, signal: Signal, copy: Copy) -> bool:
        if copy.account_id != signal.account_id:
            return False
        if signal.external_id is not None:
            return copy.external_id == signal.external_id
        return (
            copy.body_hash == signal.body_hash
            and copy.token_id == signal.token_id
            and copy.received_at >= signal.received_at - self._window
        )
