"""Events of a transaction, sent when (and only if) it commits.

Code that changes an order, a cash balance, a signal or a price calls ``publish`` with the session it
changed it in. The events wait on the session and leave at commit:

- on PostgreSQL, inside the transaction, as ``pg_notify`` calls: PostgreSQL delivers them to every
  listening process when the transaction commits and drops them when it rolls back, so a socket never
  hears of a fill that did not happen, whichever process it is connected to;
- on SQLite (one process), to this process's hub right after the commit.
"""

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import ARRAY, String, bindparam, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from quantdesk.core.db import Base, Identified, Record, savepoint, write_pending
from quantdesk.core.money import quantize, text

CHANNEL = "quantdesk_events"
PENDING_KEY = "quantdesk_pending_events"
HUB_KEY = "quantdesk_hub"
OWNERS_KEY = "quantdesk_account_owners"
NOTIFY_LIMIT = 7_000  # PostgreSQL refuses payloads from 8,000 bytes
QUEUE_STREAM = "queue"  # internal: signal orders are waiting for a broker worker
ACCESS_STREAM = "access"  # internal: a key was revoked or a user disabled; their sockets close


@dataclass(frozen=True)
class Event:
    stream: str  # trade_updates, account_updates, signal_updates, ticks:SYMBOL, queue
    data: dict[str, Any]
    account_id: int | None = None  # the owner of this account receives it ...
    user_id: int | None = None  # ... resolved at commit; both None: everyone listening to the stream


class Receiver(Protocol):
    def dispatch(self, event: Event) -> None: ...


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Decimals as the API writes them (8 places), times in ISO 8601, through nested dicts and lists."""
    # Most values of an event are plain: checked first by their exact type, the cheapest test there is.
    if type(value) in _AS_THEY_ARE:
        return value
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return _as_json(value)


def _as_json(value: Any) -> Any:
    """What a JSON encoder cannot write itself: a Decimal as the API writes it (8 places), a time in
    ISO 8601, a row by its id (anything else is left for the encoder to refuse)."""
    if isinstance(value, Decimal):
        return text(quantize(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Base | Record):  # a row added in the transaction (core.db.id_of): written by now
        return cast(Identified, value).id
    raise TypeError(f"an event cannot carry a {type(value).__name__}")


# The encoder walks an event's dicts and lists in C and calls back only for Decimals and times: a
# Python walk of every value (``jsonable``) cost about a tenth of receiving a signal.
_EVENT_JSON = json.JSONEncoder(separators=(",", ":"), default=_as_json)


def publish(
    session: AsyncSession | Session,
    stream: str,
    data: dict[str, Any],
    account_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """``data`` is sent as it is at the commit: made JSON then, where it is written to PostgreSQL's
    NOTIFY, or where it is delivered in this process (SQLite). It is for the owner of ``account_id``,
    or for ``user_id``, or (neither) for anyone listening to ``stream``."""
    pending: list[Event] = session.info.setdefault(PENDING_KEY, [])
    pending.append(Event(stream, data, account_id, user_id))


def _with_owners(session: Session, events: list[Event]) -> list[Event]:
    """The events with the user each one's account belongs to. Which user owns an account never changes,
    so a server remembers it, per database (``OWNERS_KEY``: one dict shared by a sessionmaker's sessions)."""
    from quantdesk.accounts.models import Account  # accounts publish events too

    owners: dict[int, int] = session.info.get(OWNERS_KEY, {})
    unknown = {e.account_id for e in events if e.account_id is not None} - owners.keys()
    if unknown:
        for account_id, user_id in session.execute(select(Account.id, Account.user_id).where(Account.id.in_(unknown))):
            owners[account_id] = user_id
    return [
        Event(e.stream, e.data, e.account_id, owners.get(e.account_id)) if e.account_id is not None else e
        for e in events
    ]


def audience(event: Event) -> str:
    """Who an event is for, as a payload's first line names it: a user's id, ``*`` (anyone listening to
    its stream) or the broker queue."""
    if event.stream == QUEUE_STREAM:
        return QUEUE_STREAM
    return "*" if event.user_id is None else str(event.user_id)


def payloads(events: list[Event]) -> list[str]:
    """The events as NOTIFY payloads, each small enough for one: a first line with the audience of its
    events (so that a process with no socket of theirs need not read them), then the events as a JSON array."""
    chunks: list[str] = []
    batch: list[str] = []
    listeners: set[str] = set()
    size = 2  # the brackets
    for sent in events:
        item = _EVENT_JSON.encode(_fields(sent))
        if len(item) > NOTIFY_LIMIT - 200:  # the header names at most a few audiences
            item = _EVENT_JSON.encode(_fields(sent) | {"data": outline(sent.data)})
        heard_by = listeners | {audience(sent)}
        if batch and size + len(item) + 1 + _header_size(heard_by) > NOTIFY_LIMIT:
            chunks.append(_payload(listeners, batch))
            batch, listeners, size, heard_by = [], set(), 2, {audience(sent)}
        batch.append(item)
        listeners = heard_by
        size += len(item) + 1
    if batch:
        chunks.append(_payload(listeners, batch))
    return chunks


def outline(data: dict[str, Any]) -> dict[str, Any]:
    """An event too large for one NOTIFY, reduced to what names it: its kind, its scalar fields of up to
    64 characters and the ids of the rows it shows, marked ``"outline": true``. Whoever receives it reads
    the rest (``GET /api/v1/orders/{id}``, ``/signals/{id}``): nothing is lost, and no size of a stored row
    can make a transaction's NOTIFY fail."""
    kept: dict[str, Any] = {"outline": True}
    for name, value in data.items():
        if isinstance(value, dict) and "id" in value:
            kept[name] = {"id": value["id"]}
        elif isinstance(value, (int, float, Decimal, datetime, bool)) or (isinstance(value, str) and len(value) <= 64):
            kept[name] = value
    return kept


def _header_size(listeners: set[str]) -> int:
    return sum(len(name) + 1 for name in listeners)


def _payload(listeners: set[str], items: list[str]) -> str:
    return ",".join(sorted(listeners)) + "\n[" + ",".join(items) + "]"


def _fields(event: Event) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every payload, a cost paid on each order's commit.
    return {"stream": event.stream, "data": event.data, "account_id": event.account_id, "user_id": event.user_id}


_ANYONE = frozenset({"*", QUEUE_STREAM})


def heard(payload: str) -> tuple[frozenset[str], str]:
    """A payload's audience (see ``audience``) and its events, not yet decoded. A payload without the
    first line (sent by a server of an earlier version, during an upgrade) may be for anyone."""
    if payload.startswith("["):
        return _ANYONE, payload
    header, _, events = payload.partition("\n")
    return frozenset(header.split(",")), events


def decode(events: str) -> list[Event]:
    return [Event(**item) for item in json.loads(events)]


# Every payload of a transaction in one statement (a batch of orders has several), in their order: a
# function scan of an array yields its elements in order.
_PAYLOADS = func.unnest(bindparam("payloads", type_=ARRAY(String))).table_valued("payload").render_derived("sent")
_NOTIFY = select(func.pg_notify(CHANNEL, _PAYLOADS.c.payload))


@event.listens_for(Session, "before_commit")
def _send_in_transaction(session: Session) -> None:
    events = session.info.get(PENDING_KEY)
    # SQLAlchemy runs the commit hooks when a savepoint is released too: events wait for the real commit.
    if not events or session.in_nested_transaction():
        return
    write_pending(session)  # the rows the events name have their ids from here on
    session.info[PENDING_KEY] = events = _with_owners(session, events)
    if session.get_bind().dialect.name == "postgresql":
        session.info[PENDING_KEY] = []
        session.connection().execute(_NOTIFY, {"payloads": payloads(events)})


@event.listens_for(Session, "after_commit")
def _deliver_locally(session: Session) -> None:
    if session.in_nested_transaction():
        return
    events = session.info.pop(PENDING_KEY, None)
    receiver: Receiver | None = session.info.get(HUB_KEY)
    if events and receiver is not None:
        for item in events:
            receiver.dispatch(dataclasses.replace(item, data=jsonable(item.data)))


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


@asynccontextmanager
async def all_or_nothing(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint: if the block raises, its changes are undone and the events it published are dropped,
    while the rest of the transaction goes on (a dashboard form answers with its error and commits)."""
    before = list(session.info.get(PENDING_KEY, []))
    try:
        async with savepoint(session):
            yield
    except BaseException:
        session.info[PENDING_KEY] = before
        raise
