"""Engine, sessions and the declarative base: the one place that knows SQLite from PostgreSQL."""

import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, TypeVar, cast

import asyncpg
from sqlalchemy import MetaData, Table, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from quantdesk.core.config import get_settings, normalise_database_url
from quantdesk.core.errors import NUL_IN_TEXT, ValidationFailed

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite opens transactions behind SQLAlchemy's back and breaks SAVEPOINT; take control
    # of BEGIN ourselves (the recipe in SQLAlchemy's SQLite dialect documentation).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


WRITE_INTENT = "quantdesk_write_intent"


def _sqlite_refuse_nul(
    _connection: Connection, _cursor: Any, _statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    """PostgreSQL refuses text holding NUL; SQLite would keep it. Refused alike on both, so what one
    database accepts the other does too (and a SQLite database can move to PostgreSQL). Bulk statements
    carry rows the server built (bars, events), not a client's text."""
    if executemany or not parameters:
        return
    values = parameters.values() if isinstance(parameters, dict) else parameters
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise ValidationFailed(NUL_IN_TEXT)


def _sqlite_on_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once (no busy wait) when another
    # writer committed in between. Transactions declared as writers take the lock up front and
    # queue on busy_timeout instead; readers stay deferred and never block anyone (WAL).
    immediate = connection.get_execution_options().get(WRITE_INTENT, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# What opening a database connection raises when the server cannot be reached or takes no connections
# now (refused, reset, timed out, unknown host; starting up or shutting down; out of connection slots).
# SQLAlchemy's pool passes these on as they are, not as its own errors.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
)

# PostgreSQL's SQLSTATEs for a transaction it ended so that a concurrent one could go on: the same work
# tried again succeeds.
RETRYABLE_SQLSTATES = {"40P01": "a deadlock", "40001": "a serialization failure", "55P03": "a lock wait that timed out"}
SQLITE_BUSY = 5  # the database stayed locked by another writer for the whole busy_timeout


def lost_to_a_concurrent_transaction(error: BaseException) -> str | None:
    """Why the database ended the statement's transaction in favour of a concurrent one (a deadlock, a
    serialization failure, a lock it could not get in time), or None for any other error. The
    transaction is rolled back whole, so the same work can simply be tried again."""
    if not isinstance(error, DBAPIError):
        return None
    sqlstate = getattr(error.orig, "pgcode", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return RETRYABLE_SQLSTATES[sqlstate]
    # An extended result code carries its primary code in the low byte (SQLITE_BUSY_SNAPSHOT is 517).
    if (getattr(error.orig, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_BUSY:
        return "a database locked by another writer for longer than busy_timeout"
    return None


FOREIGN_KEY_VIOLATION = "23503"
SQLITE_CONSTRAINT_FOREIGNKEY = 787


def refers_to_a_deleted_row(error: BaseException) -> bool:
    """A row the statement wrote refers to one that is gone. The services look every referenced row up
    before writing, so it was deleted by a concurrent transaction in between."""
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    return (
        getattr(orig, "pgcode", None) == FOREIGN_KEY_VIOLATION
        or getattr(orig, "sqlite_errorcode", None) == SQLITE_CONSTRAINT_FOREIGNKEY
    )


def connection_lost(error: BaseException) -> bool:
    """The database could not be reached, or the connection broke under a statement."""
    return isinstance(error, UNREACHABLE) or (isinstance(error, DBAPIError) and error.connection_invalidated)


# A pooled connection used this recently is taken to be alive; one idle for longer is pinged first.
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "quantdesk_idle_since"


def create_engine(url: str | None = None, ping_after_idle_s: float = PING_AFTER_IDLE_S, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (default: the configured database)."""
    url = normalise_database_url(url or get_settings().database_url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        event.listen(engine.sync_engine, "before_cursor_execute", _sqlite_refuse_nul)
        return engine
    engine = create_async_engine(url, **kwargs)
    _ping_when_idle(engine, ping_after_idle_s)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool: one found dead after a
    database restart or a network cut is replaced before any request uses it.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout; asyncpg's ping is three round trips, a
    third of the CPU of the cheapest request. A connection that was in use a moment ago has just
    answered; if it died since, the statement fails, SQLAlchemy invalidates the whole pool, and the
    client is told to retry (503)."""
    dialect = engine.dialect

    def mark_idle(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError("a pooled connection was found closed") from error  # the pool reconnects
            raise

    event.listen(engine.sync_engine, "connect", mark_idle)
    event.listen(engine.sync_engine, "checkin", mark_idle)
    event.listen(engine.sync_engine, "checkout", ping_if_idle)


def create_sessionmaker(engine: AsyncEngine, info: dict[str, Any] | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; ``info`` is copied into every session (the server's event hub)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


async def declare_write(session: AsyncSession) -> None:
    """Open the session's transaction as one that will write; call before anything else runs."""
    await session.connection(execution_options={WRITE_INTENT: True})


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession], write: bool = False) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    async with factory() as session:
        try:
            if write:
                await declare_write(session)
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# New rows: entities through the unit of work, or at once when an id is needed; records in bulk -------

RowT = TypeVar("RowT", bound=Base)


async def insert_returning(session: AsyncSession, model: type[RowT], rows: Sequence[Mapping[str, Any]]) -> list[RowT]:
    """Insert new rows of ``model`` now, in one statement, and return them, in the order given, as rows of
    the session (RETURNING gives their ids and defaults): for a batch of rows whose ids are needed at once."""
    if not rows:
        return []
    _refuse_nul(rows)
    statement = insert(model).returning(model, sort_by_parameter_order=True)
    return list(await session.scalars(statement, rows))


@dataclass(eq=False)
class Record:
    """A row nothing else in the transaction changes (an event, a ledger entry, a fill, a gem), written at
    the commit with the others of its table in one INSERT; its id is known from then on."""

    model: type[Base]
    values: dict[str, Any]
    numbered: bool = False  # its id is wanted (an event names it)
    id: int | None = None


_RECORDS_KEY = "quantdesk_records"  # per session: the transaction's records, by model, waiting for the commit


def append(session: AsyncSession | Session, model: type[Base], numbered: bool = False, **values: Any) -> Record:
    """Add a record of ``model``: written at the commit, or by ``write_records``, with the transaction's
    other records of its table in one INSERT, without the unit of work's bookkeeping per object (the hot
    paths add them by the hundred). A value may be a row of the session or a record not written yet (an
    order added in this transaction): it stands for that row's id, which it has once written. The record
    gets its own id only if ``numbered`` (RETURNING costs a statement per row on SQLite). A block that may
    be undone while the transaction goes on runs in ``savepoint``."""
    record = Record(model, values, numbered)
    records: dict[type[Base], list[Record]] = session.info.setdefault(_RECORDS_KEY, {})
    records.setdefault(model, []).append(record)
    return record


class Identified(Protocol):
    @property
    def id(self) -> Any: ...


def id_of(row: Identified) -> Any:
    """The row's id, or (not written yet) the row itself: a record or an event holding it says its id once
    the transaction writes it."""
    return row if row.id is None else row.id


async def write_records(session: AsyncSession) -> None:
    """Flush the session and write the records added so far: a query of this transaction finds them."""
    await session.run_sync(write_pending)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint: if the block raises, its changes are undone, the records it appended with them, while
    the rest of the transaction goes on. Records wait for the commit, so those appended before the block
    are written first: what is left unwritten when the block fails is what it appended."""
    await write_records(session)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        session.info.pop(_RECORDS_KEY, None)
        raise


def write_pending(session: Session) -> None:
    """Flush the session's new and changed rows, then write the records (which may refer to them), the
    tables in the order of their foreign keys, the numbered records given their ids."""
    session.flush()
    records: dict[type[Base], list[Record]] = session.info.pop(_RECORDS_KEY, {})
    for model in sorted(records, key=lambda model: _foreign_key_order()[cast(Table, model.__table__)]):
        rows = [{key: _stored(value) for key, value in record.values.items()} for record in records[model]]
        _refuse_nul(rows)
        if not any(record.numbered for record in records[model]):
            session.execute(insert(model), rows)
            continue
        statement = insert(model).returning(model.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]
        for record, new_id in zip(records[model], session.scalars(statement, rows), strict=True):
            record.id = new_id


def _stored(value: Any) -> Any:
    if isinstance(value, Base | Record):
        return cast(Identified, value).id  # a row stands for its id
    return value


@cache
def _foreign_key_order() -> dict[Table, int]:
    # Sorted once (MetaData.sorted_tables sorts on every call), by the first commit with records: every
    # model is imported by then.
    return {table: n for n, table in enumerate(Base.metadata.sorted_tables)}


@event.listens_for(Session, "before_commit")
def _write_records_at_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # SQLAlchemy runs this hook when a savepoint is released too
        write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_records(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # a rollback: nothing is written
        session.info.pop(_RECORDS_KEY, None)


def _refuse_nul(rows: Sequence[Mapping[str, Any]]) -> None:
    # PostgreSQL refuses text holding NUL, and SQLite is made to (_sqlite_refuse_nul, which does not look
    # into bulk statements): the same refusal on both, for rows that may carry a client's text.
    if any(isinstance(value, str) and "\x00" in value for row in rows for value in row.values()):
        raise ValidationFailed(NUL_IN_TEXT)


def dialect_name(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


def dialect_insert(session: AsyncSession, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``model``'s table that can take an ON CONFLICT clause (PostgreSQL and SQLite both
    have one, each with its own construct)."""
    return postgresql.insert(model) if dialect_name(session) == "postgresql" else sqlite.insert(model)
