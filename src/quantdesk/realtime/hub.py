"""This process's sockets and what each listens to; a slow socket is dropped, never waited for."""

import asyncio
from collections import Counter
from collections.abc import Callable

from quantdesk.realtime.events import ACCESS_STREAM, QUEUE_STREAM, Event

OWN_STREAMS = ("trade_updates", "account_updates", "signal_updates")
DEFAULT_STREAMS = frozenset(OWN_STREAMS)


class Subscriber:
    """One socket: its owner, its streams and a bounded queue of events not yet sent."""

    def __init__(
        self,
        user_id: int,
        limit: int,
        on_overflow: Callable[[], None],
        key_id: int | None = None,
        on_revoked: Callable[[str], None] = lambda _why: None,
    ) -> None:
        self.user_id = user_id
        self.key_id = key_id  # the API key the socket signed in with
        self.streams: frozenset[str] = DEFAULT_STREAMS
        self.queue: asyncio.Queue[Event] = asyncio.Queue(limit)
        self.dropped = False
        self.revoked: str | None = None  # why the socket may no longer hear anything
        self._on_overflow = on_overflow
        self._on_revoked = on_revoked

    def revoke(self, why: str) -> None:
        """Its key was revoked or its user disabled: it hears nothing more, and its socket is closed."""
        if self.revoked is None:
            self.revoked = why
            self._on_revoked(why)

    def wants(self, event: Event) -> bool:
        if event.stream not in self.streams:
            return False
        # Own streams carry one user's orders and cash: only theirs. Ticks are for everyone listening.
        return event.user_id == self.user_id if event.stream in OWN_STREAMS else True

    def offer(self, event: Event) -> None:
        if self.dropped or self.revoked:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self._on_overflow()


class Hub:
    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._sockets_of: Counter[str] = Counter()  # user id (as events' audience names it) -> sockets
        self.work_waiting = asyncio.Event()  # wakes this process's broker worker

    def add(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            self._subscribers.add(subscriber)
            self._sockets_of[str(subscriber.user_id)] += 1

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self._sockets_of[str(subscriber.user_id)] -= 1
            if not self._sockets_of[str(subscriber.user_id)]:
                del self._sockets_of[str(subscriber.user_id)]

    def heard(self, audience: frozenset[str], events: Callable[[], list[Event]]) -> None:
        """Events from another process (or this one) through PostgreSQL: read (``events``) only when a
        socket here may want one of them; the broker worker is woken when they say orders are waiting."""
        if QUEUE_STREAM in audience:
            self.work_waiting.set()
        if not self._subscribers:
            return
        if "*" in audience or any(name in self._sockets_of for name in audience):
            for event in events():
                self.dispatch(event)

    @property
    def size(self) -> int:
        return len(self._subscribers)

    def dispatch(self, event: Event) -> None:
        if event.stream == QUEUE_STREAM:
            self.work_waiting.set()
            return
        if event.stream == ACCESS_STREAM:
            self._revoke(event)
            return
        for subscriber in list(self._subscribers):
            if subscriber.wants(event):
                subscriber.offer(event)

    def _revoke(self, event: Event) -> None:
        key_id = event.data.get("key_id")  # None: the user was disabled, every key of theirs
        for subscriber in list(self._subscribers):
            if subscriber.user_id == event.user_id and (key_id is None or subscriber.key_id == key_id):
                subscriber.revoke(str(event.data.get("reason", "access was revoked")))
