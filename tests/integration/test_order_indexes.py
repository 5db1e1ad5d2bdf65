"""Hot queries on orders go through partial indexes: the broker's queue, and the day orders to expire.

Those indexes hold only the rows the queries look for (the waiting signal orders, the resting orders),
so the queries cost the same with thousands of orders done as with none. A planner uses a partial index
only when the query's own text proves its rows are in it: a status sent as a bound parameter instead of
a literal would quietly fall back to reading every such order. These tests ask each database for the
plan of the statements the server really sends (on PostgreSQL, the generic plan of a prepared
statement, as asyncpg runs them)."""

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.core.config import Settings
from quantdesk.signals import worker
from quantdesk.trading.models import Order
from tests.integration.signal_helpers import send, webhook_path
from tests.integration.trading_helpers import open_account, order


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.broker_worker = False  # the test runs the worker's steps itself
    return settings


def _literal(value: Any) -> str:
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def query_plan(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Any usable index over a sequential scan, and the plan a prepared statement gets for any values.
            await connection.exec_driver_sql("SET enable_seqscan = off")
            await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            await connection.exec_driver_sql(f"PREPARE queue_query AS {statement}")
            arguments = ", ".join(_literal(value) for value in parameters)
            rows = await connection.exec_driver_sql(f"EXPLAIN EXECUTE queue_query({arguments})")
            await connection.exec_driver_sql("DEALLOCATE queue_query")  # it outlives the transaction
        else:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", tuple(parameters))
        plan = "\n".join(str(row[-1]) for row in rows)
        await connection.rollback()
    return plan


async def with_history(engine: AsyncEngine, done: int = 2000) -> None:
    """``done`` more filled orders like the newest one, and fresh planner statistics: the shape these
    indexes are for, a long history and few open orders."""
    async with engine.begin() as connection:
        newest = (await connection.execute(select(Order.__table__).order_by(Order.id.desc()).limit(1))).mappings()
        row = {**newest.one(), "status": "filled", "client_order_id": None}
        del row["id"]
        await connection.execute(insert(Order), [row] * done)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
        await connection.commit()


async def test_the_worker_finds_the_next_order_through_the_queues_partial_indexes(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    assert (await send(alice, path, "BUY ACME")).status_code == 202
    engine: AsyncEngine = app.state.engine
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    await with_history(engine)
    assert (await send(alice, path, "BUY ACME qty 2")).status_code == 202
    sent: list[tuple[str, Any]] = []

    def note(_conn: object, _cursor: object, statement: str, parameters: Any, *_args: object) -> None:
        if "orders.status = 'new'" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert len(sent) == 2, sent  # the claim, and the claimed account's oldest waiting order
    for statement, parameters in sent:  # either index reads only the waiting orders
        plan = await query_plan(engine, statement, parameters)
        assert "ix_orders_waiting" in plan, (statement, plan)


async def test_day_orders_due_to_expire_are_found_through_their_partial_index(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI
):
    """Every order listing first expires the day orders whose session ended: that query must not read
    every order ever placed."""
    assert (await order(alice, await open_account(alice))).status_code == 201
    engine: AsyncEngine = app.state.engine
    await with_history(engine)
    sent: list[tuple[str, Any]] = []

    def note(_conn: object, _cursor: object, statement: str, parameters: Any, *_args: object) -> None:
        if "orders.status = 'accepted'" in statement and "expires_at" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        assert (await alice.get("/api/v1/orders")).status_code == 200
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert len(sent) == 1, sent
    plan = await query_plan(engine, *sent[0])
    assert "ix_orders_expiring" in plan, plan


def _scanned_orders(plan: Any) -> list[int]:
    """The rows each scan of ``orders`` in an EXPLAIN (ANALYZE, FORMAT JSON) plan read."""
    found = [plan["Actual Rows"]] if plan.get("Relation Name") == "orders" else []
    for child in plan.get("Plans", []):
        found.extend(_scanned_orders(child))
    return found


async def orders_read(
    engine: AsyncEngine, statement: str, parameters: tuple[Any, ...] = (), planning: str | None = None
) -> int:
    """The most rows any scan of ``orders`` read when ``statement`` ran (rolled back), after ``planning``."""
    async with engine.connect() as connection:
        if planning is not None:
            await connection.exec_driver_sql(planning)
        rows = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters)
        plan = rows.scalar_one()
        await connection.rollback()
    return max(_scanned_orders((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))


async def burst_unknown_to_the_statistics(engine: AsyncEngine, alice: httpx.AsyncClient, orders: int) -> None:
    """What a new database taking a burst looks like to PostgreSQL's planner: indexes built on an empty
    table (as the migrations build them), no statistics of its columns (the fixture's TRUNCATE has reset
    the table's own size), and then ``orders`` + 1 signal orders waiting."""
    async with engine.begin() as connection:
        if not (
            await connection.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar():
            pytest.skip("forgetting a table's statistics (pg_statistic) takes a superuser")
        await connection.exec_driver_sql("REINDEX TABLE orders")
        await connection.exec_driver_sql("DELETE FROM pg_statistic WHERE starelid = 'orders'::regclass")
    path = await webhook_path(alice, await open_account(alice))
    assert (await send(alice, path, "BUY ACME")).status_code == 202
    async with engine.begin() as connection:
        waiting = (await connection.execute(select(Order.__table__))).mappings().one()
        row = {**waiting, "client_order_id": None}
        del row["id"]
        await connection.execute(insert(Order), [row] * orders)


async def test_the_claim_reads_only_the_oldest_orders_of_a_queue_the_statistics_do_not_know(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    """The worker's claim must read the queue's index in order and stop after the few orders it looks
    at, not read every waiting order and sort them: 20,000 waiting on a table without statistics."""
    engine: AsyncEngine = app.state.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans without statistics of this kind; its claim is tested above")
    await burst_unknown_to_the_statistics(engine, alice, 20_000)
    claim = str(worker._CLAIM.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))

    assert await orders_read(engine, claim) <= worker.CLAIM_SCAN
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
