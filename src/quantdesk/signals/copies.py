"""Duplicate suppression: a signal sent again (the same ``id`` field on the account, or the same body on
the same webhook within the window) creates one signal; the copies are kept as duplicates of the first.

Copies arriving together (a sender's retry storm, over several server processes) are checked one after
the other: on PostgreSQL a batch first takes a transaction lock on each of its signals' keys, in key
order (so two batches never wait for each other crosswise), then reads the earlier copies, which a
concurrent batch holding the same key has committed by then. SQLite's writers are serialised already.
The same key, kept on each accepted signal (``copy_key``), is what the earlier copies are read by.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ARRAY, BigInteger, Integer, String, and_, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.db import dialect_name
from quantdesk.core.types import UTCTimestamp
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


def lock_key(signal: Signal | Copy) -> int:
    """The transaction lock of the signal's copies: its account and its id field, or else its body."""
    digest = hashlib.sha256(f"{signal.account_id}:{signal.external_id or signal.body_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_KEYS = func.unnest(bindparam("keys", type_=ARRAY(BigInteger))).table_valued("key").render_derived("locked")
_LOCK_KEYS = select(func.pg_advisory_xact_lock(_KEYS.c.key))
_NO_FIRST_COPY = ("rejected", "duplicate")  # the statuses of signals that later ones cannot repeat
_COPY_COLUMNS = {
    "id": Integer,
    "account_id": Integer,
    "token_id": Integer,
    "external_id": String,
    "body_hash": String,
    "received_at": UTCTimestamp,
}
# The bound arrays are typed by their casts, which SQLAlchemy adds for asyncpg.
# One index probe per key: OFFSET 0 keeps the subquery from being merged into a join, which PostgreSQL
# plans as a scan of the whole table while it has no statistics of it yet (a new database).
EARLIER_ON_POSTGRES = (
    text(
        f"""
        SELECT copies.* FROM unnest(:keys, :since) AS wanted(key, since)
        CROSS JOIN LATERAL (
            SELECT {", ".join(_COPY_COLUMNS)} FROM signals
            WHERE copy_key = wanted.key AND received_at >= wanted.since
            AND status NOT IN ({", ".join(repr(status) for status in _NO_FIRST_COPY)})
            OFFSET 0
        ) AS copies
        """  # noqa: S608 - names and statuses from this module
    )
    .bindparams(bindparam("keys", type_=ARRAY(BigInteger)), bindparam("since", type_=ARRAY(UTCTimestamp)))
    .columns(**_COPY_COLUMNS)
)
_EARLIER_SQLITE = select(*(getattr(Signal, name) for name in _COPY_COLUMNS)).where(
    Signal.status.not_in(_NO_FIRST_COPY),
    or_(
        Signal.copy_key.in_(bindparam("id_keys", expanding=True)),
        and_(Signal.copy_key.in_(bindparam("body_keys", expanding=True)), Signal.received_at >= bindparam("since")),
    ),
)
_ANY_TIME = datetime.min.replace(tzinfo=UTC)


class Copies:
    """The accepted signals that the signals of one transaction may repeat: those stored before it, and
    those it accepts itself, by key (a signal can repeat only a copy with its key)."""

    def __init__(self, earlier: list[Copy], window_s: float, keys: dict[Signal, int] | None = None) -> None:
        self._by_key: dict[int, list[Copy | Signal]] = {}
        for copy in sorted(earlier, key=lambda copy: copy.id):
            self._by_key.setdefault(lock_key(copy), []).append(copy)
        self._window = timedelta(seconds=window_s)
        self._keys = keys or {}  # of the signals loaded for: each hashed once

    @classmethod
    async def load(cls, session: AsyncSession, signals: Sequence[Signal], window_s: float) -> "Copies":
        """Lock the keys of ``signals`` (PostgreSQL) and read the earlier copies any of them may repeat."""
        if not signals:
            return cls([], window_s)
        window = timedelta(seconds=window_s)
        keys = {signal: lock_key(signal) for signal in signals}
        since = {keys[signal]: _ANY_TIME for signal in signals if signal.external_id is not None}
        for signal in signals:
            if signal.external_id is None:
                since.setdefault(keys[signal], signal.received_at - window)
        if dialect_name(session) == "postgresql":
            await session.execute(_LOCK_KEYS, {"keys": sorted(since)})
            found = await session.execute(EARLIER_ON_POSTGRES, {"keys": list(since), "since": list(since.values())})
        else:
            found = await session.execute(
                _EARLIER_SQLITE,
                {
                    "id_keys": [key for key, oldest in since.items() if oldest == _ANY_TIME],
                    "body_keys": [key for key, oldest in since.items() if oldest != _ANY_TIME],
                    "since": min(since.values()),
                },
            )
        return cls([Copy(*row) for row in found], window_s, keys)

    def first_of(self, signal: Signal) -> Copy | Signal | None:
        """The first accepted signal that ``signal`` repeats: the same id on the account, or the same body
        on the same webhook (through the API: on the same account) within the window: stored before this
        transaction (a Copy), or accepted in it (the Signal, whose id is known once it is inserted)."""
        candidates = self._by_key.get(self._key(signal), ())
        return next((copy for copy in candidates if self._repeats(signal, copy)), None)

    def accept(self, signal: Signal) -> None:
        """``signal`` is accepted in this transaction: later ones of it may repeat it. It is given the key
        under which the copies sent after this transaction find it."""
        signal.copy_key = self._key(signal)
        self._by_key.setdefault(signal.copy_key, []).append(signal)

    def _key(self, signal: Signal) -> int:
        key = self._keys.get(signal)
        return lock_key(signal) if key is None else key

    def _repeats(self, signal: Signal, copy: Copy | Signal) -> bool:
        if copy.account_id != signal.account_id:
            return False
        if signal.external_id is not None:
            return copy.external_id == signal.external_id
        return (
            copy.body_hash == signal.body_hash
            and copy.token_id == signal.token_id
            and copy.received_at >= signal.received_at - self._window
        )
