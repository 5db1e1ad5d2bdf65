"""A request body limit enforced while the body streams in, before anything is parsed."""

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantdesk.api.errors import problem


class BodySizeLimit:
    """``max_bytes`` is asked for per request: the limit is a setting, and settings are the running
    application's."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @staticmethod
    def _too_large(limit: int) -> str:
        return (
            f"the request body is larger than the {limit / 1024 / 1024:g} MiB limit "
            "(QUANTDESK_MAX_UPLOAD_MB); split the file, or ingest it locally with `quantdesk ingest`"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem(413, "payload_too_large", self._too_large(limit))(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing untouched.
                    raise HTTPException(413, self._too_large(limit))
            return message

        await self.app(scope, counting_receive, send)
