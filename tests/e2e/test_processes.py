"""Servers as separate processes: events cross from one to another, and a killed server loses nothing."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect

from quantdesk.accounts.models import Account, LedgerEntry
from quantdesk.core.db import create_engine
from quantdesk.market.models import Instrument
from quantdesk.signals.models import Signal
from quantdesk.trading.models import Fill, Order, Position
from tests.conftest import bearer, empty_all_tables, make_user
from tests.e2e.servers import ServerProcess


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
async def pg_engine(postgresql_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgresql_url)
    await empty_all_tables(engine)
    yield engine
    await engine.dispose()


async def trader_with_webhook(engine: AsyncEngine, server: ServerProcess, deposit: str) -> tuple[str, int, str]:
    """ACME and BETA priced at 100 and 10 by an admin; a trader with an account and a webhook: key, account id,
    webhook URL."""
    admin, trader = await make_user(engine, "root", "admin"), await make_user(engine, "trader")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for symbol, price in (("ACME", "100"), ("BETA", "10")):
            asset = await http.post("/api/v1/assets", json={"symbol": symbol, "price": price}, headers=bearer(admin))
            assert asset.status_code == 201, asset.text
        body = {"name": "tv", "initial_deposit": deposit}
        account_id = (await http.post("/api/v1/accounts", json=body, headers=bearer(trader))).json()["id"]
        hook = await http.post(f"/api/v1/accounts/{account_id}/webhooks", headers=bearer(trader))
    return trader, account_id, hook.json()["url"]


async def next_fill(socket: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if message["stream"] == "trade_updates" and message["data"]["event"] == "fill":
            data: dict[str, Any] = message["data"]
            return data


@pytest.mark.postgres
async def test_a_fill_reaches_a_socket_on_another_server_process(
    postgresql_url: str, pg_engine: AsyncEngine, servers: list[ServerProcess], tmp_path: Path
):
    servers.append(first := ServerProcess(postgresql_url, tmp_path / "first.log"))
    servers.append(second := ServerProcess(postgresql_url, tmp_path / "second.log"))
    key, account_id, url = await trader_with_webhook(pg_engine, first, "10000")
    socket_url = second.url.replace("http://", "ws://") + f"/ws?token={key}"
    async with connect(socket_url) as socket, httpx.AsyncClient(timeout=10) as http:
        assert json.loads(await socket.recv())["data"]["status"] == "authorized"
        received = await http.post(url, content=b"BUY ACME qty 3")  # to the first process
        assert received.status_code == 202, received.text
        fill = await next_fill(socket)  # heard on the second
    async with pg_engine.connect() as connection:
        opened = await connection.scalar(select(Signal.order_id).where(Signal.id == received.json()["signal_id"]))
    assert (fill["order"]["account_id"], fill["order"]["id"]) == (account_id, opened)
    assert (fill["price"], fill["qty"]) == ("100.00000000", "3.00000000")


async def fire(url: str, acknowledged: list[int], stop: asyncio.Event, first_id: int) -> None:
    """Send distinct signals one after another until told to stop or the server dies; keep the 202s."""
    async with httpx.AsyncClient(timeout=5) as http:
        n = first_id
        while not stop.is_set():
            body = json.dumps({"action": "buy", "ticker": "ACME", "contracts": 1, "id": f"load-{n}"})
            try:
                answer = await http.post(url, content=body.encode())
            except httpx.TransportError:
                return  # the server was killed under us: this one was never acknowledged
            assert answer.status_code == 202, answer.text
            acknowledged.append(answer.json()["signal_id"])
            n += 1_000


async def buy_over_rest(base_url: str, key: str, account_id: int, acknowledged: list[int], stop: asyncio.Event) -> None:
    """Market buys of one BETA through the REST API until told to stop or the server dies; keep the 201s."""
    body = {"account_id": account_id, "symbol": "BETA", "side": "buy", "type": "market", "quantity": "1"}
    async with httpx.AsyncClient(base_url=base_url, timeout=5, headers=bearer(key)) as http:
        while not stop.is_set():
            try:
                answer = await http.post("/api/v1/orders", json=body)
            except httpx.TransportError:
                return
            assert answer.status_code == 201, answer.text
            acknowledged.append(answer.json()["id"])


async def test_a_server_killed_under_load_leaves_every_acknowledged_signal_executed_once(
    database_url: str, engine: AsyncEngine, servers: list[ServerProcess], tmp_path: Path
):
    limits = {"webhook_rate_per_s": "0"}
    servers.append(doomed := ServerProcess(database_url, tmp_path / "doomed.log", settings=limits))
    trader, account_id, url = await trader_with_webhook(engine, doomed, "1000000")
    acknowledged: list[int] = []
    rest_orders: list[int] = []
    stop = asyncio.Event()
    senders = [asyncio.create_task(fire(url, acknowledged, stop, n)) for n in range(8)]
    senders += [asyncio.create_task(buy_over_rest(doomed.url, trader, account_id, rest_orders, stop)) for _ in range(2)]
    deadline = asyncio.get_running_loop().time() + 60
    # A cold server (first requests, busy CI) takes a while to get going; SQLite's one writer may serve the
    # signals first: kill only once both kinds of load are in flight.
    while len(acknowledged) < 40 or len(rest_orders) < 3:
        assert asyncio.get_running_loop().time() < deadline, "the load never got going"
        await asyncio.sleep(0.05)
    doomed.kill()  # mid-load: requests in flight, orders waiting, perhaps one mid-execution
    stop.set()
    await asyncio.gather(*senders)
    async with engine.connect() as connection:
        waiting = await connection.scalar(select(func.count()).select_from(Signal).where(Signal.status == "pending"))

    servers.append(ServerProcess(database_url, tmp_path / "restarted.log", settings=limits))
    statuses = await final_statuses(engine, acknowledged)
    assert set(statuses.values()) == {"executed"}, statuses
    # A signal stored by a request killed before its answer is executed too, perhaps after the others.
    async with engine.connect() as connection:
        stored = list(await connection.scalars(select(Signal.id)))
    assert set((await final_statuses(engine, stored)).values()) == {"executed"}

    async with engine.connect() as connection:
        fills_per_order = dict(
            (await connection.execute(select(Fill.order_id, func.count()).group_by(Fill.order_id))).all()
        )
        query = select(Signal.order_id).where(Signal.id.in_(acknowledged))
        signal_orders = [order_id for order_id in await connection.scalars(query) if order_id is not None]
        cash = await connection.scalar(select(Account.cash).where(Account.id == account_id))
        ledger = await connection.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        amounts = (await connection.scalars(select(LedgerEntry.amount))).all()
        holdings = select(Instrument.symbol, Position.quantity).join(
            Instrument, Instrument.id == Position.instrument_id
        )
        held = dict((await connection.execute(holdings.where(Position.account_id == account_id))).all())
        signals_stored = await connection.scalar(select(func.count()).select_from(Signal)) or 0
        filled = await connection.scalar(select(func.count()).select_from(Order).where(Order.status == "filled")) or 0
        signal_fills = (
            await connection.scalar(
                select(func.count()).select_from(Order).where(Order.status == "filled", Order.source == "signal")
            )
            or 0
        )
        rest_statuses = dict(
            (await connection.execute(select(Order.id, Order.status).where(Order.id.in_(rest_orders)))).all()
        )
    assert len(signal_orders) == len(acknowledged)
    assert all(fills_per_order.get(order_id) == 1 for order_id in signal_orders), "an order filled twice or never"
    assert set(fills_per_order.values()) == {1}
    assert held["ACME"] == Decimal(signal_fills) == Decimal(signals_stored)  # every stored signal bought one share
    assert rest_orders, "no REST order was acknowledged before the kill"
    assert set(rest_statuses.values()) == {"filled"}  # a 201 is a committed fill, kill or not
    assert all(fills_per_order.get(order_id) == 1 for order_id in rest_orders)
    assert held["BETA"] == Decimal(filled - signal_fills) >= len(rest_orders)
    assert len(acknowledged) <= signals_stored  # a request killed after its commit stored one it never answered
    assert cash == sum(amounts, Decimal(0))
    assert ledger == filled + 1  # the deposit and one trade row per fill
    print(
        f"acknowledged {len(acknowledged)} signals and {len(rest_orders)} orders, {waiting} signals pending at the kill"
    )


async def final_statuses(engine: AsyncEngine, signal_ids: list[int], timeout_s: float = 60.0) -> dict[int, str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        async with engine.connect() as connection:
            rows = await connection.execute(select(Signal.id, Signal.status).where(Signal.id.in_(signal_ids)))
            statuses = dict(rows.all())
        if "pending" not in statuses.values() or asyncio.get_running_loop().time() > deadline:
            return statuses
        await asyncio.sleep(0.2)
