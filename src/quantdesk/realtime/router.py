"""WS /ws: a user's order, fill, cash and signal events as they happen, the way Alpaca streams them.

    -> {"action": "auth", "key": "qd_..."}            (or connect with ?token=qd_..., or from a
                                                        dashboard page, signed in by its cookie; Alpaca's
                                                        older {"action": "authenticate", "data":
                                                        {"key_id": "qd_..."}} works too)
    <- {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
    -> {"action": "listen", "data": {"streams": ["trade_updates", "ticks:EURUSD"]}}
    <- {"stream": "listening", "data": {"streams": ["ticks:EURUSD", "trade_updates"]}}
    <- {"stream": "trade_updates", "data": {"event": "fill", "price": "1.085", "qty": "1", "order": {...}}}

Messages may come in text or binary frames (Alpaca's clients use both); answers are text frames.
A new socket listens to its owner's trade_updates, account_updates and signal_updates. Quiet sockets
get a heartbeat; a socket that falls ``websocket_queue`` events behind is closed (1013) so that it
never slows anyone else.
"""

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from quantdesk.accounts import service as accounts
from quantdesk.accounts.service import Principal
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import session_scope
from quantdesk.core.errors import Forbidden, Unauthorized
from quantdesk.realtime.hub import OWN_STREAMS, Hub, Subscriber
from quantdesk.signals.parser import normalise_symbol
from quantdesk.web.session import cookie_key, same_origin

router = APIRouter()
AUTH_TIMEOUT_S = 10.0
POLICY_VIOLATION, TRY_AGAIN_LATER = 1008, 1013


def message(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def error(text: str) -> str:
    return message("error", {"error": text})


async def _principal(websocket: WebSocket, key: str) -> Principal | None:
    try:
        async with session_scope(websocket.app.state.sessionmaker) as session:
            principal, _ = await accounts.authenticate(session, key)
        return principal
    except (Unauthorized, Forbidden):
        return None


def _dashboard_key(websocket: WebSocket) -> str | None:
    """The dashboard's sign-in cookie, only from a page of this server: a browser sends cookies with a
    socket opened by any site, so another origin's page must not ride on them."""
    return cookie_key(websocket) if websocket.headers.get("origin") and same_origin(websocket) else None


async def receive_json(websocket: WebSocket) -> Any:
    """The next message, parsed, from a text or a binary frame; ValueError when it is not JSON."""
    frame = await websocket.receive()
    if frame["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(frame.get("code", 1000), frame.get("reason"))
    raw = frame.get("text")
    return json.loads(raw if raw is not None else frame.get("bytes") or b"")


def key_in(request: Any) -> str | None:
    """The API key of an auth message: ours, or Alpaca's older form (its secret_key is not needed)."""
    if not isinstance(request, dict):
        return None
    if request.get("action") == "auth":
        key = request.get("key")
    elif request.get("action") == "authenticate" and isinstance(request.get("data"), dict):
        key = request["data"].get("key_id")
    else:
        return None
    return key if isinstance(key, str) and key else None


async def _authenticate(websocket: WebSocket, token: str | None) -> tuple[Principal, str] | None:
    """The caller and the key they signed in with, or None (told so)."""
    key = token or _dashboard_key(websocket)
    if key is None:
        try:
            key = key_in(await asyncio.wait_for(receive_json(websocket), AUTH_TIMEOUT_S))
        except (TimeoutError, ValueError):
            key = None
    principal = await _principal(websocket, key) if key else None
    status = "authorized" if principal is not None else "unauthorized"
    await websocket.send_text(message("authorization", {"status": status, "action": "authenticate"}))
    return (principal, key) if principal is not None and key else None


def chosen_streams(data: Any) -> frozenset[str]:
    """The streams a listen message asks for; ValueError names the one that does not exist."""
    streams = data.get("streams") if isinstance(data, dict) else None
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
        raise ValueError('listen takes {"data": {"streams": ["trade_updates", "ticks:EURUSD", ...]}}')
    chosen = set()
    for stream in streams:
        if stream in OWN_STREAMS:
            chosen.add(stream)
        elif stream.startswith("ticks:") and len(stream) > len("ticks:"):
            chosen.add("ticks:" + normalise_symbol(stream.removeprefix("ticks:")))
        else:
            raise ValueError(f"no stream '{stream}': use {', '.join(OWN_STREAMS)} or ticks:SYMBOL")
    return frozenset(chosen)


async def _read(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        try:
            request = await receive_json(websocket)
        except ValueError:
            await websocket.send_text(error("messages are JSON objects with an 'action'"))
            continue
        action = request.get("action") if isinstance(request, dict) else None
        if action == "listen":
            try:
                subscriber.streams = chosen_streams(request.get("data"))
            except ValueError as wrong:
                await websocket.send_text(error(str(wrong)))
                continue
            await websocket.send_text(message("listening", {"streams": sorted(subscriber.streams)}))
        elif action in ("auth", "authenticate"):
            await websocket.send_text(error("this socket is authenticated already"))
        else:
            await websocket.send_text(error(f"unknown action {action!r}: use listen"))


async def _write(websocket: WebSocket, subscriber: Subscriber, heartbeat_s: float) -> None:
    while True:
        if subscriber.queue.empty():
            # wait_for costs a task and a trip round the event loop: only worth paying when idle.
            try:
                event = await asyncio.wait_for(subscriber.queue.get(), heartbeat_s)
            except TimeoutError:
                await websocket.send_text(message("heartbeat", {"at": utcnow().isoformat()}))
                continue
        else:
            event = subscriber.queue.get_nowait()
        # The event's own fields, not dataclasses.asdict: that deep-copies the payload, for every socket.
        await websocket.send_text(message(event.stream, event.data))


@router.websocket("/ws")
async def stream(websocket: WebSocket, token: str | None = None) -> None:
    settings: Settings = websocket.app.state.settings
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    try:
        signed_in = await _authenticate(websocket, token)
    except WebSocketDisconnect:
        return
    if signed_in is None:
        await websocket.close(POLICY_VIOLATION, "a valid API key is needed")
        return
    principal, key = signed_in
    writer: asyncio.Task[None] | None = None

    def stop_writing(_why: str = "") -> None:
        if writer is not None:
            writer.cancel()

    subscriber = Subscriber(principal.user_id, settings.websocket_queue, stop_writing, principal.key_id, stop_writing)
    hub.add(subscriber)
    reader = asyncio.create_task(_read(websocket, subscriber))
    writer = asyncio.create_task(_write(websocket, subscriber, settings.websocket_heartbeat_s))
    stopping = asyncio.Event()
    watcher = asyncio.create_task(_still_allowed(websocket, subscriber, key, settings.websocket_heartbeat_s, stopping))
    try:
        await asyncio.wait({reader, writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(subscriber)
        for task in (reader, writer):
            task.cancel()
        # The watcher is told to stop rather than cancelled: one cancelled in the middle of its query
        # would leave the database connection to be torn down after the event loop may have closed.
        stopping.set()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await asyncio.gather(reader, writer, watcher, return_exceptions=True)
        if subscriber.revoked:
            await _close(websocket, POLICY_VIOLATION, subscriber.revoked)
        elif subscriber.dropped:
            await _close(websocket, TRY_AGAIN_LATER, "too slow: events were dropped")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # A client that reads nothing never takes the close frame either: then the connection ends when the
    # handler returns, after the bytes already buffered for it.
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(websocket.close(code, reason), 1.0)


async def _still_allowed(
    websocket: WebSocket, subscriber: Subscriber, key: str, every_s: float, stopping: asyncio.Event
) -> None:
    """Checks the socket's key again now and then, until ``stopping``. A revocation is an event that
    closes the socket at once on every server (``Hub``); this catches one made where no event reaches
    this process (the command line on SQLite, which has no NOTIFY)."""
    while subscriber.revoked is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_s)
        if stopping.is_set():
            return
        if await _principal(websocket, key) is None:
            subscriber.revoke("the API key was revoked or its user disabled")
