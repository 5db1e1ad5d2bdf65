"""Group commit: the work of concurrent requests done together, one transaction per batch.

A request hands its item to the batcher and waits. One task per batcher takes every item waiting at that
moment and runs them in one transaction, then answers each request; items that arrive meanwhile form the
next batch. Nothing waits for a batch to fill up: alone, an item runs at once, in a batch of one. Only a
batch smaller than the one before waits a moment (``LINGER_S``) for the rest of that batch's clients. Under
load, what a transaction costs whatever it holds (BEGIN, COMMIT and its wait for the disk, the fixed cost
of each statement) is paid once per batch instead of once per request.

The work function's contract: it returns one outcome per item, in order, either the item's result or the
domain error that refused it, and a refused item has written nothing. When the transaction as a whole
fails (a deadlock, a constraint that a concurrent transaction took first, a broken connection), nothing of
it was committed: each item is run again in a transaction of its own, so one item cannot fail the others,
and the error a request then sees is its own.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quantdesk.core.db import session_scope

Item = TypeVar("Item")
Result = TypeVar("Result")
Work = Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Result | Exception]]]

log = logging.getLogger(__name__)
MAX_BATCH = 64  # past this, a batch holds its locks (accounts, signal keys) for longer than it saves
# Batches running at once. More overlap one batch's waits for the database with building the next, but
# splits the waiting work into smaller batches: in alternating runs of 32 webhook connections on 2 server
# processes, 1 in flight took 410-427 signals/s and 2 took 384-409 (4: about 300).
IN_FLIGHT = 1
# How long a batch smaller than the one before waits for the rest of its clients. Answered together,
# the clients of a batch send their next requests together, but the first to reach the batcher would
# start a batch of its own, and the others form the next: the batches then alternate, 1 and N-1, for as
# long as the load lasts, and half the transactions carry one item. Measured on the trading benchmark
# (2 server processes, 16 connections): batches of 1 and 5 became batches of 6.
LINGER_S = 0.001


class GroupCommit(Generic[Item, Result]):
    """``in_flight`` batches may run at once, each in its own transaction."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        work: Work[Item, Result],
        max_batch: int = MAX_BATCH,
        in_flight: int = IN_FLIGHT,
        linger_s: float = LINGER_S,
    ) -> None:
        self._factory, self._work, self._max_batch, self._in_flight = factory, work, max_batch, in_flight
        self._linger_s = linger_s
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runners: set[asyncio.Task[None]] = set()
        self._last_size = 0  # of the batch taken last

    async def submit(self, item: Item) -> Result:
        """The item's result once its batch has committed; raises the error that refused it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # the request may be gone (hung up) by the time it is answered
        self._waiting.append((item, future))
        if len(self._runners) < self._in_flight:
            runner = asyncio.create_task(self._run())
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        # Shielded: a client that hangs up does not cancel the batch its item is in (the others wait on it).
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._waiting:
            if len(self._waiting) < min(self._last_size, self._max_batch):
                await asyncio.sleep(self._linger_s)  # the rest of the last batch's clients are on their way
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            self._last_size = len(batch)
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[Item, "asyncio.Future[Result]"]]) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await self._in_transaction(items)
        except Exception as failure:
            if len(batch) == 1:
                outcomes = [failure]
            else:
                log.info("a batch of %d failed (%s); its items run one by one", len(batch), type(failure).__name__)
                outcomes = [await self._alone(item) for item in items]
        except BaseException as stopped:  # cancelled (shutdown): the waiting requests hear of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
            raise stopped
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # pragma: no cover - futures are resolved here only
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _in_transaction(self, items: Sequence[Item]) -> Sequence[Result | Exception]:
        async with session_scope(self._factory, write=True) as session:
            outcomes = await self._work(session, items)
        if len(outcomes) != len(items):  # pragma: no cover - a work function's own bug
            raise RuntimeError(f"the work gave {len(outcomes)} outcomes for {len(items)} items")
        return outcomes

    async def _alone(self, item: Item) -> Result | Exception:
        try:
            return (await self._in_transaction([item]))[0]
        except Exception as failure:
            return failure


def _retrieved(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()
