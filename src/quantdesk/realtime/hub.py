"""This process's sockets and what each listens to; a slow socket is dropped, never waited for."""

import asyncio
from collections.abc import Callable

from quantdesk.realtime.events import QUEUE_STREAM, Event

OWN_STREAMS = ("trade_updates", "account_updates", "signal_updates")
DEFAULT_STREAMS = frozenset(OWN_STREAMS)


class Subscriber:
    """One socket: its owner, its streams and a bounded queue of events not yet sent."""

    def __init__(self, user_id: int, limit: int, on_overflow: Callable[[], None]) -> None:
        self.user_id = user_id
        self.streams: frozenset[str] = DEFAULT_STREAMS
        self.queue: asyncio.Queue[Event] = asyncio.Queue(limit)
        self.dropped = False
        self._on_overflow = on_overflow

    def wants(self, event: Event) -> bool:
        if event.stream not in self.streams:
            return False
        # Own streams carry one user's orders and cash: only theirs. Ticks are for everyone listening.
        return event.user_id == self.user_id if event.stream in OWN_STREAMS else True

    def offer(self, event: Event) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self._on_overflow()


class Hub:
    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self.work_waiting = asyncio.Event()  # wakes this process's broker worker

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def size(self) -> int:
        return len(self._subscribers)

    def dispatch(self, event: Event) -> None:
        if event.stream == QUEUE_STREAM:
            self.work_waiting.set()
            return
        for subscriber in list(self._subscribers):
            if subscriber.wants(event):
                subscriber.offer(event)
