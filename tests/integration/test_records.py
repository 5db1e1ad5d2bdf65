"""Rows nothing refers to (events, ledger entries, gems) are appended to the transaction and written at its
commit, one INSERT per table; new rows others refer to are inserted at once, RETURNING their ids."""

import contextlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.accounts import service as accounts
from quantdesk.core.db import (
    append,
    create_sessionmaker,
    id_of,
    insert_returning,
    savepoint,
    session_scope,
    write_records,
)
from quantdesk.core.errors import ValidationFailed
from quantdesk.signals.models import Signal, SignalEvent
from tests.conftest import counted_statements

AT = datetime(2026, 12, 8, 12, tzinfo=UTC)


class Undone(Exception):
    pass


@pytest.fixture
async def account_id(engine: AsyncEngine) -> int:
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        user, _ = await accounts.create_user(session, "trader")
        return (await accounts.open_account(session, user, "main", "USD", Decimal(0))).id


def a_signal(account_id: int, body: str = "BUY EURUSD") -> dict[str, object]:
    return {
        "account_id": account_id, "source": "api", "raw_body": body, "body_hash": "0" * 64, "status": "rejected",
        "take_profit": [], "received_at": AT, "updated_at": AT,
    }  # fmt: skip


async def events_of(engine: AsyncEngine) -> list[str | None]:
    async with create_sessionmaker(engine)() as session:
        return list(await session.scalars(select(SignalEvent.reason).order_by(SignalEvent.id)))


async def test_new_rows_come_back_in_the_order_given_with_their_ids(engine: AsyncEngine, account_id: int):
    async with session_scope(create_sessionmaker(engine)) as session:
        stored = await insert_returning(session, Signal, [a_signal(account_id, f"body {n}") for n in range(5)])
        assert [signal.raw_body for signal in stored] == [f"body {n}" for n in range(5)]
        ids = [signal.id for signal in stored]
        assert ids == sorted(ids)
        assert len(set(ids)) == 5
        stored[0].reason = "changed after the insert"  # a row of the session: the unit of work writes it
    async with create_sessionmaker(engine)() as session:
        assert (await session.get_one(Signal, ids[0])).reason == "changed after the insert"


async def test_records_are_written_at_the_commit_in_one_insert_per_table(engine: AsyncEngine, account_id: int):
    factory = create_sessionmaker(engine)
    with counted_statements(engine) as sent:
        async with session_scope(factory) as session:
            (signal,) = await insert_returning(session, Signal, [a_signal(account_id)])
            for n in range(3):
                append(session, SignalEvent, signal_id=signal.id, status="rejected", reason=f"event {n}", at=AT)
            assert await events_of(engine) == []  # not before the commit
    assert await events_of(engine) == ["event 0", "event 1", "event 2"]
    assert sum(statement.startswith("INSERT INTO signal_events") for statement in sent) == 1


async def test_a_rolled_back_transaction_or_savepoint_writes_none_of_its_records(engine: AsyncEngine, account_id: int):
    factory = create_sessionmaker(engine)
    with contextlib.suppress(Undone):
        async with session_scope(factory) as session:
            (signal,) = await insert_returning(session, Signal, [a_signal(account_id)])
            append(session, SignalEvent, signal_id=signal.id, status="rejected", reason="rolled back", at=AT)
            raise Undone
    async with session_scope(factory) as session:
        (signal,) = await insert_returning(session, Signal, [a_signal(account_id)])
        append(session, SignalEvent, signal_id=signal.id, status="rejected", reason="before", at=AT)
        with contextlib.suppress(Undone):
            async with savepoint(session):
                append(session, SignalEvent, signal_id=signal.id, status="rejected", reason="undone", at=AT)
                raise Undone
        append(session, SignalEvent, signal_id=signal.id, status="rejected", reason="after", at=AT)
    assert await events_of(engine) == ["before", "after"]


async def test_records_written_early_are_found_by_the_transactions_queries(engine: AsyncEngine, account_id: int):
    async with session_scope(create_sessionmaker(engine)) as session:
        (signal,) = await insert_returning(session, Signal, [a_signal(account_id)])
        append(session, SignalEvent, signal_id=signal.id, status="rejected", reason="early", at=AT)
        await write_records(session)
        assert list(await session.scalars(select(SignalEvent.reason))) == ["early"]
    assert await events_of(engine) == ["early"]  # and not written twice


async def test_text_with_nul_is_refused_alike_on_both_databases(engine: AsyncEngine, account_id: int):
    async def with_event_reason(reason: str) -> None:
        async with session_scope(create_sessionmaker(engine)) as session:
            (signal,) = await insert_returning(session, Signal, [a_signal(account_id)])
            append(session, SignalEvent, signal_id=signal.id, status="rejected", reason=reason, at=AT)

    async def with_body(body: str) -> None:
        async with session_scope(create_sessionmaker(engine)) as session:
            await insert_returning(session, Signal, [a_signal(account_id, body)])

    with pytest.raises(ValidationFailed):
        await with_event_reason("a\x00b")
    with pytest.raises(ValidationFailed):
        await with_body("BUY\x00EURUSD")
    assert await events_of(engine) == []


async def test_a_record_may_name_a_row_added_but_not_written_yet(engine: AsyncEngine, account_id: int):
    async with session_scope(create_sessionmaker(engine)) as session:
        signal = Signal(**a_signal(account_id))
        session.add(signal)
        event = append(session, SignalEvent, numbered=True, signal_id=signal, status="rejected", reason="named", at=AT)
        assert (id_of(signal), event.id) == (signal, None)  # neither is written yet
    assert isinstance(signal.id, int)
    assert isinstance(event.id, int)
    async with create_sessionmaker(engine)() as session:
        assert (await session.get_one(SignalEvent, event.id)).signal_id == signal.id
