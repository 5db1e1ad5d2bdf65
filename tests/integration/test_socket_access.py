"""A socket stops hearing anything the moment its key is revoked or its user disabled."""

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from quantdesk.accounts.models import ApiKey
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from tests.conftest import http_client, make_user
from tests.integration.live import serving
from tests.integration.test_realtime import collect, receive
from tests.integration.trading_helpers import open_account, order

SLOW_RECHECK_S = 120.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The heartbeat also paces the socket's own check of its key: slow here, so that only the revocation
    # event can close a socket within these tests.
    return Settings(database_url=database_url, websocket_heartbeat_s=SLOW_RECHECK_S, _env_file=None)


async def closed_with(socket: ClientConnection, timeout_s: float = 5.0) -> tuple[int, str, list[Any]]:
    """The close code and reason, and whatever the socket heard before it."""
    heard: list[Any] = []
    with pytest.raises(ConnectionClosed) as closed:
        await read_until_closed(socket, heard, timeout_s)
    assert closed.value.rcvd is not None, "the server did not close the socket"
    return closed.value.rcvd.code, closed.value.rcvd.reason, heard


async def read_until_closed(socket: ClientConnection, heard: list[Any], timeout_s: float) -> None:
    while True:
        heard.append(await receive(socket, timeout_s))


async def test_revoking_a_key_closes_its_sockets_and_delivers_nothing_more(
    app: FastAPI, engine: AsyncEngine, market: httpx.AsyncClient
):
    first_key = await make_user(engine, "alice")
    async with serving(app) as host, http_client(app, first_key) as alice:
        account = await open_account(alice)
        second = (await alice.post("/api/v1/keys", json={"label": "phone"})).json()
        first_id = next(key["id"] for key in (await alice.get("/api/v1/keys")).json() if key["id"] != second["id"])
        async with (
            connect(f"ws://{host}/ws?token={first_key}") as revoked_socket,
            connect(f"ws://{host}/ws?token={second['api_key']}") as kept_socket,
        ):
            for socket in (revoked_socket, kept_socket):
                assert (await receive(socket))["data"]["status"] == "authorized"
            # An admin revokes the leaked key (allowed, and logged).
            assert (await market.delete(f"/api/v1/keys/{first_id}")).status_code == 204
            code, reason, heard = await closed_with(revoked_socket)
            assert (code, reason, heard) == (1008, "the API key was revoked", [])
            async with http_client(app, second["api_key"]) as phone:
                assert (await order(phone, account)).status_code == 201
            heard_by_kept = await collect(kept_socket, ("trade_updates", "fill"))
            assert heard_by_kept[-1]["data"]["order"]["account_id"] == account

            disabled = await market.patch(f"/api/v1/users/{second['user_id']}", json={"disabled": True})
            assert disabled.status_code == 200
            assert (await closed_with(kept_socket))[:2] == (1008, "the user was disabled")


async def test_a_socket_finds_out_by_itself_when_no_event_reaches_its_server(
    app: FastAPI, engine: AsyncEngine, settings: Settings
):
    """A key revoked where no event is sent to this process (the command line on SQLite) closes the socket
    at its next check, which the heartbeat paces."""
    settings.websocket_heartbeat_s = 0.2
    key = await make_user(engine, "erin")
    async with serving(app) as host, connect(f"ws://{host}/ws?token={key}") as socket:
        assert (await receive(socket))["data"]["status"] == "authorized"
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(update(ApiKey).values(revoked_at=utcnow()))
        code, _reason, heard = await closed_with(socket)
        assert code == 1008
        assert all(json.dumps(message).count("heartbeat") for message in heard)
