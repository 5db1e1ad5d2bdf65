"""Per HTTP request: an id, one access-log line and the request metrics.

The id is the client's ``X-Request-ID`` when it is a sane one (so a proxy's id follows the request),
else a new one; it is on every log record of the request and in the answer's ``X-Request-ID`` header.
A pure ASGI middleware, so a streamed answer is neither buffered nor delayed.
"""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantdesk.api import metrics
from quantdesk.core.logging import REQUEST_ID, redact

access = logging.getLogger("quantdesk.access")
SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def request_id(scope: Scope) -> str:
    given = dict(scope["headers"]).get(b"x-request-id")
    return given.decode() if given is not None and SANE_ID.match(given) else uuid.uuid4().hex


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        REQUEST_ID.set(rid)  # each request runs in its own task: the value stays with it
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe_request(scope["method"], route, status, elapsed)
            if access.isEnabledFor(logging.INFO):  # the line costs a regex and a record: only when it is kept
                log_access(scope, status, elapsed)


def log_access(scope: Scope, status: int, elapsed: float) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    target = redact(scope["path"] + (f"?{query}" if query else ""))
    client = scope["client"][0] if scope.get("client") else "-"
    fields = {"client": client, "method": scope["method"], "path": target, "status": status}
    access.info(
        "%s %s %s %d %.1fms",
        client,
        scope["method"],
        target,
        status,
        elapsed * 1000,
        extra={**fields, "duration_ms": round(elapsed * 1000, 2)},
    )
