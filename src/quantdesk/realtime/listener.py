"""PostgreSQL LISTEN: every process hears the events every other process committed."""

import asyncio
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from quantdesk.realtime.events import CHANNEL, decode, heard
from quantdesk.realtime.hub import Hub

log = logging.getLogger(__name__)
RECONNECT_S = 1.0
PING_EVERY_S = 30.0  # a connection that died silently (no FIN) is found by the next ping


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(database_url: str, hub: Hub, ready: asyncio.Event | None = None) -> None:
    """Forward notifications to ``hub`` until cancelled; a lost connection is reopened (and the broker
    worker woken, since a notification may have been missed meanwhile)."""
    dsn = asyncpg_dsn(database_url)

    def forward(_connection: Any, _pid: int, _channel: str, payload: object) -> None:
        audience, events = heard(str(payload))
        hub.heard(audience, lambda: decode(events))

    while True:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as failure:
            log.warning("event listener cannot connect (%s); retrying", failure)
            await asyncio.sleep(RECONNECT_S)
            continue
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
        try:
            await connection.add_listener(CHANNEL, forward)
            hub.work_waiting.set()
            if ready is not None:
                ready.set()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), PING_EVERY_S)
                except TimeoutError:
                    await connection.execute("SELECT 1", timeout=PING_EVERY_S)
            log.warning("event listener lost its connection; reconnecting")
        except (OSError, asyncpg.PostgresError, TimeoutError) as failure:
            log.warning("event listener failed (%s); reconnecting", failure)
        finally:
            if not connection.is_closed():
                await connection.close(timeout=2)
