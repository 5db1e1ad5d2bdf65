"""WS /ws: a trader's order, fill, cash and signal events arrive live, and only theirs."""

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from quantdesk.core.config import Settings
from quantdesk.realtime.events import Event
from tests.conftest import http_client, make_user
from tests.integration.live import serving
from tests.integration.signal_helpers import send, settled, tick, webhook_path
from tests.integration.trading_helpers import open_account, order


async def receive(socket: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout_s))
    return message


async def collect(socket: ClientConnection, last: tuple[str, str], timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Messages (heartbeats aside) up to and including the first of stream ``last[0]`` with event ``last[1]``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    messages: list[dict[str, Any]] = []
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {last} within {timeout_s} s; got {messages}"
        message = await receive(socket, left)
        if message["stream"] != "heartbeat":
            messages.append(message)
        if (message["stream"], message["data"].get("event")) == last:
            return messages


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, websocket_heartbeat_s=0.3, websocket_queue=20, _env_file=None)


async def test_a_socket_follows_its_owners_signal_from_webhook_to_fill_to_close(
    app: FastAPI, engine: AsyncEngine, market: httpx.AsyncClient
):
    alice_key, bob_key = await make_user(engine, "alice"), await make_user(engine, "bob")
    async with serving(app) as host, http_client(app, alice_key) as alice, http_client(app, bob_key) as bob:
        account = await open_account(alice, "10000")
        bob_account = await open_account(bob, "10000")
        path = await webhook_path(alice, account)
        async with connect(f"ws://{host}/ws?token={alice_key}") as socket:
            assert await receive(socket) == {
                "stream": "authorization",
                "data": {"status": "authorized", "action": "authenticate"},
            }
            assert (await order(bob, bob_account)).status_code == 201  # Bob's fill: not Alice's business
            signal_id = (await send(alice, path, "BUY ACME qty 2 SL 90 TP 110")).json()["signal_id"]
            opened = await collect(socket, ("signal_updates", "executed"))
            assert {m["data"]["order"]["account_id"] for m in opened if m["stream"] == "trade_updates"} == {account}
            events = [(m["stream"], m["data"]["event"]) for m in opened]
            assert events.count(("trade_updates", "new")) == 3  # the entry and its two bracket legs
            assert ("signal_updates", "pending") in events
            fill = next(m["data"] for m in opened if m["data"]["event"] == "fill")
            executed = next(m["data"]["signal"] for m in opened if m["data"]["event"] == "executed")
            assert (fill["price"], fill["qty"], fill["order"]["id"]) == (
                "100.00000000",
                "2.00000000",
                executed["order_id"],
            )
            assert executed["id"] == signal_id
            assert fill["position_qty"] == "2.00000000"  # Alpaca's fields: the position after the fill
            assert isinstance(fill["execution_id"], int)
            cash = next(m["data"] for m in opened if m["stream"] == "account_updates")
            assert (cash["event"], cash["cash"]) == ("trade", "9800.00000000")
            assert events.count(("trade_updates", "accepted")) == 2  # the legs are working
            assert opened[-1]["data"]["signal"]["entry_price"] == "100.00000000"

            await tick(market, "ACME", "89")
            closing = await collect(socket, ("signal_updates", "closed"))
            closed = next(m["data"]["signal"] for m in closing if m["data"]["event"] == "closed")
            assert (closed["id"], closed["realized_pnl"]) == (signal_id, "-22.00000000")
            canceled = next(m["data"]["order"] for m in closing if m["data"]["event"] == "canceled")
            assert canceled["leg"] == "take_profit"
            assert (await settled(alice, signal_id))["status"] == "closed"


async def test_first_message_auth_listen_streams_ticks_and_heartbeats(
    app: FastAPI, engine: AsyncEngine, market: httpx.AsyncClient
):
    key = await make_user(engine, "carol")
    async with serving(app) as host, connect(f"ws://{host}/ws") as socket:
        await socket.send(json.dumps({"action": "auth", "key": key}))
        assert (await receive(socket))["data"]["status"] == "authorized"
        await socket.send(json.dumps({"action": "listen", "data": {"streams": ["ticks:acme", "trade_updates"]}}))
        assert await receive(socket) == {"stream": "listening", "data": {"streams": ["ticks:ACME", "trade_updates"]}}
        await socket.send(json.dumps({"action": "listen", "data": {"streams": ["everything"]}}))
        assert "no stream 'everything'" in (await receive(socket))["data"]["error"]
        await socket.send("not json")
        assert (await receive(socket))["stream"] == "error"
        await tick(market, "ACME", "101.25")
        tick_message = await until_stream(socket, "ticks:ACME")
        assert (tick_message["data"]["price"], tick_message["data"]["source"]) == ("101.25000000", "tick")
        assert (await until_stream(socket, "heartbeat"))["data"]["at"]


async def until_stream(socket: ClientConnection, stream: str) -> dict[str, Any]:
    while True:
        message = await receive(socket)
        if message["stream"] == stream:
            return message


async def test_alpacas_older_auth_message_and_binary_frames_are_understood(app: FastAPI, engine: AsyncEngine):
    """Alpaca's clients may authenticate with {"action": "authenticate", "data": {"key_id": ...}} and send
    binary frames: both work, and a binary frame that is not JSON gets an error, not a dead socket."""
    key = await make_user(engine, "dora")
    alpaca_auth = {"action": "authenticate", "data": {"key_id": key, "secret_key": "not needed"}}
    async with serving(app) as host, connect(f"ws://{host}/ws") as socket:
        await socket.send(json.dumps(alpaca_auth).encode())
        assert await receive(socket) == {
            "stream": "authorization",
            "data": {"status": "authorized", "action": "authenticate"},
        }
        await socket.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}).encode())
        assert await receive(socket) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        await socket.send(b"\xff\xfe not JSON")
        assert (await receive(socket))["stream"] == "error"
        await socket.send(json.dumps(alpaca_auth))
        assert "authenticated already" in (await receive(socket))["data"]["error"]


@pytest.mark.parametrize("first", [b"\x00\xff", json.dumps({"action": "authenticate", "data": "qd_x"}).encode()])
async def test_an_unreadable_first_message_is_refused_and_the_socket_closed(
    app: FastAPI, engine: AsyncEngine, first: bytes
):
    async with serving(app) as host, connect(f"ws://{host}/ws") as socket:
        await socket.send(first)
        assert (await receive(socket))["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


async def test_a_bad_key_is_refused_and_the_socket_closed(app: FastAPI, engine: AsyncEngine):
    async with serving(app) as host, connect(f"ws://{host}/ws?token=qd_wrong") as socket:
        assert (await receive(socket))["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


async def test_a_slow_socket_is_dropped_without_slowing_the_others(app: FastAPI, engine: AsyncEngine):
    key = await make_user(engine, "dave")
    hub = app.state.hub
    async with serving(app) as host, connect(f"ws://{host}/ws?token={key}") as fast:
        await receive(fast)
        slow = await silent_socket(host, f"/ws?token={key}")  # connects, then never reads a byte
        for _ in range(1000):
            if hub.size == 2:
                break
            await asyncio.sleep(0.01)
        async with http_client(app, key) as dave:
            user_id = (await dave.get("/api/v1/users/me")).json()["id"]
        sent, received = 300, 0

        async def read_fast() -> None:
            nonlocal received
            while received < sent:
                if (await receive(fast))["stream"] == "trade_updates":
                    received += 1

        reader = asyncio.create_task(read_fast())
        padding = "x" * 50_000  # the slow socket's kernel buffers are full after about 80 of these
        for n in range(sent):
            hub.dispatch(Event("trade_updates", {"event": "fill", "n": n, "padding": padding}, user_id=user_id))
            await asyncio.sleep(0.002)
        await asyncio.wait_for(reader, 30)
        assert received == sent  # the fast socket got every event, in time
        assert hub.size == 1  # the slow one fell more than websocket_queue events behind: dropped
        slow.close()


async def silent_socket(host: str, path: str) -> socket.socket:
    """A WebSocket client that completes the opening request and then reads nothing at all."""
    address, port = host.split(":")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # else Linux grows it to 32 MB
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(raw, (address, int(port)))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(raw, request.encode())
    return raw
