"""Which database errors mean "a concurrent transaction won, try again": SQLite's side of it (PostgreSQL's
deadlocks are met for real in tests/integration/test_concurrent_writers.py)."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from quantdesk.core.db import create_engine, lost_to_a_concurrent_transaction


async def test_a_write_refused_because_sqlite_stayed_locked_is_lost_to_a_concurrent_transaction(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}")
    try:
        async with engine.begin() as setup:
            await setup.execute(text("CREATE TABLE t (n integer)"))
        async with engine.connect() as holder, engine.connect() as waiter:
            await holder.execute(text("INSERT INTO t VALUES (1)"))  # the write lock, held until the block ends
            await waiter.execute(text("PRAGMA busy_timeout = 0"))
            with pytest.raises(DBAPIError) as locked:
                await waiter.execute(text("INSERT INTO t VALUES (2)"))
            with pytest.raises(DBAPIError) as wrong:
                await waiter.execute(text("INSERT INTO missing VALUES (2)"))
    finally:
        await engine.dispose()
    assert lost_to_a_concurrent_transaction(locked.value) == (
        "a database locked by another writer for longer than busy_timeout"
    )
    assert lost_to_a_concurrent_transaction(wrong.value) is None
    assert lost_to_a_concurrent_transaction(ValueError("not a database error")) is None
