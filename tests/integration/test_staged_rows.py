"""Staged rows (core.db.stage): new rows written in bulk at the commit, as the unit of work would write them."""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import User
from quantdesk.backtest.models import Backtest, SweepRun
from quantdesk.core.db import create_sessionmaker, flush, new_row, reserve_ids, session_scope, stage, take_id
from quantdesk.core.errors import ValidationFailed
from quantdesk.market.models import Bar, Instrument
from quantdesk.signals.models import Signal, SignalEvent
from quantdesk.trading.models import Position
from tests.conftest import counted_statements

NOW = datetime(2026, 1, 2, tzinfo=UTC)


async def an_account(engine: AsyncEngine) -> int:
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        user, _ = await accounts.create_user(session, "trader")
        return (await accounts.open_account(session, user, "main", "USD", Decimal(0))).id


def a_signal(signal_id: int, account_id: int, body: str = "BUY EURUSD") -> Signal:
    """Made as the hot paths make their staged rows (``new_row``); the events here, by the mapped constructor."""
    return new_row(
        Signal,
        id=signal_id,
        account_id=account_id,
        source="api",
        raw_body=body,
        body_hash="h",
        status="pending",
        take_profit=[],
        received_at=NOW,
        updated_at=NOW,
    )


async def test_staged_rows_are_written_at_the_commit_in_the_order_of_their_foreign_keys(engine):
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        await reserve_ids(session, {Signal: 2})
        first, second = await take_id(session, Signal), await take_id(session, Signal)
        # The events are staged before their signals: they are written after them all the same.
        stage(session, SignalEvent(signal_id=first, status="pending", at=NOW))
        stage(session, a_signal(first, account_id), a_signal(second, account_id))
        late = SignalEvent(signal_id=second, status="pending", at=NOW)
        stage(session, late)
        late.reason = "changed after it was staged"
        assert list(await session.scalars(select(Signal.id))) == [], "nothing is written before the commit"
    async with factory() as session:
        assert list(await session.scalars(select(Signal.id).order_by(Signal.id))) == [first, second]
        events = list(await session.scalars(select(SignalEvent).order_by(SignalEvent.id)))
        assert [(e.signal_id, e.reason) for e in events] == [(first, None), (second, "changed after it was staged")]
        assert all(e.id is not None for e in events)


async def test_a_rollback_writes_nothing_staged_and_a_savepoint_drops_what_was_staged_in_it(engine):
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)

    async def fail_after_staging() -> None:
        async with session_scope(factory, write=True) as session:
            stage(session, a_signal(await take_id(session, Signal), account_id, "rolled back"))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await fail_after_staging()
    async with session_scope(factory, write=True) as session:
        stage(session, a_signal(await take_id(session, Signal), account_id, "kept"))
        savepoint = await session.begin_nested()
        stage(session, a_signal(await take_id(session, Signal), account_id, "undone"))
        await savepoint.rollback()
        stage(session, a_signal(await take_id(session, Signal), account_id, "after the savepoint"))
    async with factory() as session:
        bodies = list(await session.scalars(select(Signal.raw_body).order_by(Signal.id)))
    assert bodies == ["kept", "after the savepoint"]


async def test_a_flush_writes_the_staged_rows_and_keeps_track_of_their_later_changes(engine):
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        signal = a_signal(await take_id(session, Signal), account_id)
        stage(session, signal)
        await flush(session)
        assert list(await session.scalars(select(Signal.id))) == [signal.id], "written, in this transaction"
        assert await session.get(Signal, signal.id) is signal, "and in the session"
        signal.status = "executed"
    async with factory() as session:
        assert (await session.scalars(select(Signal.status))).one() == "executed"


async def test_staged_text_holding_nul_is_refused_on_both_databases(engine):
    account_id = await an_account(engine)
    with pytest.raises(ValidationFailed, match="NUL"):
        async with session_scope(create_sessionmaker(engine), write=True) as session:
            stage(session, a_signal(await take_id(session, Signal), account_id, "BUY\x00EURUSD"))
    async with create_sessionmaker(engine)() as session:
        assert list(await session.scalars(select(Signal.id))) == []
        assert len(list(await session.scalars(select(User.id)))) == 1


async def test_ids_reserved_for_several_tables_at_once_are_taken_by_the_rows_of_each(engine):
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        await reserve_ids(session, {Signal: 3, SignalEvent: 2})
        signals = [await take_id(session, Signal) for _ in range(3)]
        events = [await take_id(session, SignalEvent) for _ in range(2)]
        stage(session, *(a_signal(signal_id, account_id) for signal_id in signals))
        stage(
            session, *(SignalEvent(id=event_id, signal_id=signals[0], status="pending", at=NOW) for event_id in events)
        )
    assert len(set(signals)) == 3
    assert len(set(events)) == 2
    async with factory() as session:
        assert list(await session.scalars(select(Signal.id).order_by(Signal.id))) == sorted(signals)
        assert list(await session.scalars(select(SignalEvent.id).order_by(SignalEvent.id))) == sorted(events)


async def test_staged_rows_keep_every_value_as_the_unit_of_work_writes_it(engine):
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        signal_id = await take_id(session, Signal)
        staged = a_signal(signal_id, account_id, body="BUY EURUSD\nTP 1.1 1.2")
        staged.take_profit, staged.entry, staged.stop_loss = ["1.1", "1.2"], Decimal("1.05"), None
        stage(session, staged)
        # The database numbers events staged without an id; each learns its own once written.
        numbered = [
            SignalEvent(signal_id=signal_id, status=s, reason=f"{s} ✓", at=NOW) for s in ("pending", "executed")
        ]
        stage(session, *numbered)
    async with factory() as session:
        stored = await session.get_one(Signal, signal_id)
        assert (stored.raw_body, stored.take_profit, stored.entry, stored.stop_loss) == (
            "BUY EURUSD\nTP 1.1 1.2",
            ["1.1", "1.2"],
            Decimal("1.05"),
            None,
        )
        assert stored.received_at == NOW
        for staged_event in numbered:
            event = await session.get_one(SignalEvent, staged_event.id)
            assert (event.status, event.reason, event.at) == (staged_event.status, f"{staged_event.status} ✓", NOW)


def test_a_new_row_takes_only_the_columns_of_its_model():
    with pytest.raises(TypeError, match="Signal has no attribute recieved_at"):
        new_row(Signal, account_id=1, recieved_at=NOW)
    with pytest.raises(TypeError, match="SignalEvent has no attribute signal"):
        new_row(SignalEvent, signal=None)  # a relationship: a new row sets the id column
    assert new_row(Signal, status="pending").status == "pending"


async def test_changes_to_loaded_rows_are_written_at_the_commit_with_the_staged_rows(engine):
    """On PostgreSQL in the staged rows' statement, one UPDATE per table and set of changed columns;
    on SQLite by the unit of work. Either way each row gets its own values, composite keys included."""
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        await reserve_ids(session, {Signal: 3})
        ids = [await take_id(session, Signal) for _ in range(3)]
        stage(session, *(a_signal(signal_id, account_id) for signal_id in ids))
        instruments = [Instrument(symbol=s, currency="USD", asset_class="fx", fractional=True) for s in ("A", "B")]
        session.add_all(instruments)
        await session.flush()
        session.add_all([Position(account_id=account_id, instrument_id=i.id, quantity=Decimal(1)) for i in instruments])
    async with session_scope(factory, write=True) as session:
        signals = {s.id: s for s in await session.scalars(select(Signal))}
        positions = {p.instrument_id: p for p in await session.scalars(select(Position))}
        for signal in signals.values():
            signal.status = "executed"
        signals[ids[0]].reason = "filled at 1.08"
        positions[instruments[1].id].quantity = Decimal("2.5")
        stage(session, new_row(SignalEvent, signal_id=ids[0], status="executed", at=NOW))
        with counted_statements(engine) as statements:
            await session.commit()
    if engine.dialect.name == "postgresql":
        (written,) = [sql for sql in statements if sql.startswith("WITH")]
        assert written.count("UPDATE") == 3, "signals: status; signals: status and reason; positions"
        assert not [sql for sql in statements if sql.startswith("UPDATE")], "no row written on its own"
    async with factory() as session:
        stored = {s.id: (s.status, s.reason) for s in await session.scalars(select(Signal))}
        assert stored == {
            ids[0]: ("executed", "filled at 1.08"),
            ids[1]: ("executed", None),
            ids[2]: ("executed", None),
        }
        quantities = {p.instrument_id: p.quantity for p in await session.scalars(select(Position))}
        assert quantities == {instruments[0].id: Decimal(1), instruments[1].id: Decimal("2.5")}


async def a_stored_signal(engine: AsyncEngine) -> tuple[async_sessionmaker[AsyncSession], int]:
    """A pending signal committed on a new account, and the sessions to change it in."""
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        stage(session, a_signal(signal_id := await take_id(session, Signal), account_id))
    return factory, signal_id


async def test_a_row_changed_again_after_its_change_was_written_is_written_again(engine):
    factory, signal_id = await a_stored_signal(engine)
    async with session_scope(factory, write=True) as session:
        signal = await session.get_one(Signal, signal_id)
        signal.status = "executed"
        await flush(session)
        signal.reason = "and then closed"
        signal.status = "closed"
    async with factory() as session:
        assert (await session.get_one(Signal, signal_id)).status == "closed"
        assert (await session.get_one(Signal, signal_id)).reason == "and then closed"


async def test_changes_beside_new_rows_of_the_session_are_left_to_the_unit_of_work(engine):
    """A changed row may refer to a row just added to the session, which the unit of work must insert
    first: then it writes the changes too, in its own order."""
    factory, signal_id = await a_stored_signal(engine)
    async with session_scope(factory, write=True) as session:
        signal = await session.get_one(Signal, signal_id)
        session.add(Instrument(id=4242, symbol="NEW", currency="USD", asset_class="fx", fractional=True))
        signal.status, signal.instrument_id = "executed", 4242  # refers to the row not yet inserted
    async with factory() as session:
        stored = await session.get_one(Signal, signal_id)
        assert (stored.status, stored.instrument_id) == ("executed", 4242)


async def test_a_change_written_in_a_savepoint_is_undone_with_the_savepoint_around_it(engine):
    factory, signal_id = await a_stored_signal(engine)
    async with session_scope(factory, write=True) as session:
        signal = await session.get_one(Signal, signal_id)
        outer = await session.begin_nested()
        inner = await session.begin_nested()
        signal.status = "executed"
        await inner.commit()  # the change is written here
        await outer.rollback()  # and undone here: the row in the session must not keep it
        assert (await session.get_one(Signal, signal_id)).status == "pending"
        signal.reason = "changed after the rollback"
    async with factory() as session:
        stored = await session.get_one(Signal, signal_id)
        assert (stored.status, stored.reason) == ("pending", "changed after the rollback")


async def test_a_change_to_a_row_whose_columns_update_themselves_is_left_to_the_unit_of_work(engine):
    """An instrument's ``updated_at`` has an onupdate: the unit of work sets it with the change."""
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        instrument = Instrument(symbol="ACME", currency="USD", asset_class="stock", updated_at=NOW)
        session.add(instrument)
    async with session_scope(factory, write=True) as session:
        stored = await session.get_one(Instrument, instrument.id)
        stored.name = "Acme Corp"
    async with factory() as session:
        again = await session.get_one(Instrument, instrument.id)
        assert again.name == "Acme Corp"
        assert again.updated_at > NOW


# Every kind of value a column holds, with the text JSON must escape and the floats it has no number for.
AWKWARD_TEXT = 'a "quote", a back\\slash, a new\nline, a tab\t, \u2028, 📈 and <&>'
FLOATS = [0.1, 1e-300, -2.5e300, math.inf, -math.inf]  # and NaN, which SQLite stores as NULL: PostgreSQL only


def floats(engine: AsyncEngine) -> list[float]:
    return FLOATS + ([math.nan] if engine.dialect.name == "postgresql" else [])


def a_backtest(instrument_id: int, strategy: str) -> Backtest:
    return new_row(
        Backtest,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        instrument_id=instrument_id,
        symbol="ACME",
        interval="1d",
        strategy=strategy,
        params={"fast": 5, "text": AWKWARD_TEXT, "nested": {"none": None, "levels": [1.5, "1.10"]}},
        settings={},
        metrics={"sharpe": None},
        trades=[],
        equity_curve=bytes(range(256)),
    )


def bars(instrument_id: int, interval: str, values: list[float]) -> list[Bar]:
    return [
        new_row(Bar, instrument_id=instrument_id, interval=interval, ts=NOW + timedelta(days=n), open=value,
                high=value, low=value, close=value, volume=0.0)
        for n, value in enumerate(values)
    ]  # fmt: skip


def stored_as_text(row: Any, *columns: str) -> tuple[str, ...]:
    return tuple(repr(getattr(row, column)) for column in columns)


async def staged_backtest_and_bars(factory: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> Instrument:
    """An instrument, then a staged backtest and daily bars of it: every kind of value a column holds."""
    async with session_scope(factory, write=True) as session:
        instrument = Instrument(symbol="ACME", currency="USD", asset_class="stock")
        session.add(instrument)
    async with session_scope(factory, write=True) as session:
        stage(session, a_backtest(instrument.id, "staged"), *bars(instrument.id, "1d", floats(engine)))
    return instrument


async def test_staged_values_of_every_column_type_come_back_as_the_unit_of_work_writes_them(engine):
    """On PostgreSQL staged rows travel as one JSON array per column: decimals, instants to the
    microsecond, bytes, NaN and the infinities, JSON documents and JSON's null must all arrive as the
    unit of work's own INSERT stores them."""
    factory = create_sessionmaker(engine)
    instrument = await staged_backtest_and_bars(factory, engine)
    async with session_scope(factory, write=True) as session:
        stage(session, new_row(SweepRun, instrument_id=instrument.id, symbol="ACME", interval="1d",
                               strategy="staged", grid={}, settings={}, rank_by="sharpe", results=None))  # fmt: skip
    async with session_scope(factory, write=True) as session:
        session.add_all([a_backtest(instrument.id, "added"), *bars(instrument.id, "1h", floats(engine))])
        session.add(SweepRun(instrument_id=instrument.id, symbol="ACME", interval="1d", strategy="added", grid={},
                             settings={}, rank_by="sharpe", results=None))  # fmt: skip
    columns = ("created_at", "params", "settings", "metrics", "trades", "equity_curve")
    async with factory() as session:
        backtests = {b.strategy: b for b in await session.scalars(select(Backtest))}
        assert stored_as_text(backtests["staged"], *columns) == stored_as_text(backtests["added"], *columns)
        assert backtests["staged"].params["text"] == AWKWARD_TEXT
        by_interval: dict[str, list[Bar]] = {"1d": [], "1h": []}
        for bar in await session.scalars(select(Bar).order_by(Bar.ts)):
            by_interval[bar.interval].append(bar)
        assert [repr(bar.close) for bar in by_interval["1d"]] == [repr(value) for value in floats(engine)]
        assert [stored_as_text(b, "ts", "open", "volume") for b in by_interval["1d"]] == [
            stored_as_text(b, "ts", "open", "volume") for b in by_interval["1h"]
        ]
        nulls = await session.execute(text("SELECT strategy, results IS NULL FROM sweeps ORDER BY strategy"))
        assert sorted(tuple(row) for row in nulls) == [("added", False), ("staged", False)], (
            "JSON's null, as the ORM writes None"
        )


async def test_changed_values_of_every_column_type_are_written_exactly(engine):
    factory = create_sessionmaker(engine)
    await staged_backtest_and_bars(factory, engine)
    later = datetime(2026, 5, 6, 7, 8, 9, 1, tzinfo=UTC)
    async with session_scope(factory, write=True) as session:
        backtest = (await session.scalars(select(Backtest))).one()
        backtest.created_at, backtest.equity_curve = later, b"\x00\\x'\xff"
        backtest.metrics, backtest.strategy = {"sharpe": 1.25, "note": AWKWARD_TEXT}, AWKWARD_TEXT[:40]
        for bar, value in zip(
            await session.scalars(select(Bar).order_by(Bar.ts)), reversed(floats(engine)), strict=True
        ):
            bar.close = value
    async with factory() as session:
        again = (await session.scalars(select(Backtest))).one()
        assert (again.created_at, again.equity_curve) == (later, b"\x00\\x'\xff")
        assert (again.metrics, again.strategy) == ({"sharpe": 1.25, "note": AWKWARD_TEXT}, AWKWARD_TEXT[:40])
        closes = [bar.close for bar in await session.scalars(select(Bar).order_by(Bar.ts))]
        assert [repr(value) for value in closes] == [repr(value) for value in reversed(floats(engine))]


async def test_a_staged_value_too_long_for_its_column_fares_as_it_does_through_the_unit_of_work(engine):
    """PostgreSQL refuses it (SQLite keeps any length): never cut short to fit."""
    account_id = await an_account(engine)
    factory = create_sessionmaker(engine)

    async def store(write: Callable[[AsyncSession, Signal], None]) -> str:
        try:
            async with session_scope(factory, write=True) as session:
                signal = a_signal(await take_id(session, Signal), account_id)
                signal.symbol = "S" * 40  # the column holds 32
                write(session, signal)
        except DBAPIError as refused:
            return type(refused.orig).__name__
        async with factory() as session:
            return (await session.get_one(Signal, signal.id)).symbol or ""

    staged, added = await store(stage), await store(lambda session, signal: session.add(signal))
    assert staged == added
    assert staged == ("S" * 40 if engine.dialect.name == "sqlite" else added)
