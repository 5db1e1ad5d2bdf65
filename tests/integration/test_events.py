"""Events leave with their transaction's commit: not at a savepoint, never after a rollback."""

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.realtime.events import HUB_KEY, Event, publish


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def dispatch(self, event: Event) -> None:
        self.events.append(event)


async def publish_then_fail(factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(factory, write=True) as session:
        publish(session, "ticks:ACME", {"price": 2})
        raise RuntimeError("rolled back")


async def test_events_wait_for_the_outer_commit_and_die_with_a_rollback(engine: AsyncEngine):
    if engine.dialect.name == "postgresql":
        pytest.skip("on PostgreSQL the transaction sends them (pg_notify); test_realtime covers that path")
    recorder = Recorder()
    factory = create_sessionmaker(engine, info={HUB_KEY: recorder})
    async with session_scope(factory, write=True) as session:
        async with session.begin_nested():
            publish(session, "ticks:ACME", {"price": 1})
        assert recorder.events == []  # a released savepoint is not a commit
    assert [e.data for e in recorder.events] == [{"price": 1}]

    with pytest.raises(RuntimeError):
        await publish_then_fail(factory)
    async with session_scope(factory, write=True) as session:
        publish(session, "ticks:ACME", {"price": 3})
    assert [e.data["price"] for e in recorder.events] == [1, 3]
