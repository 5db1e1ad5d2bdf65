"""TradingView's webhook served in front of FastAPI's routing: the endpoint called directly.

``POST /webhooks/{token}`` is the hottest path of the server and needs nothing FastAPI does for a route:
its one path parameter is the rest of the path, its body is read by the endpoint itself, and its only
dependency is the settings. Matching the routes, solving the dependencies and the exception middleware
cost about 70 us a request (in-process, against 22 us for the whole of this path), which is more than a
tenth of what receiving a signal costs. FastAPI still declares the route, so the OpenAPI document and
every other method on that path (a GET is a 405) are its own; errors are answered from the same table
(``api.errors``), and the request middleware (id, access log, metrics under the route's template) wraps
this one as it wraps FastAPI.
"""

from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quantdesk.api.errors import error_response
from quantdesk.signals.router import receive_webhook, webhooks

PREFIX = "/webhooks/"
# FastAPI's declaration of the webhook: the route a request is counted under in the metrics.
DECLARED = next(route for route in webhooks.routes if isinstance(route, APIRoute) and route.endpoint is receive_webhook)


def webhook_token(scope: Scope) -> str | None:
    """The token of a ``POST /webhooks/{token}`` (the path under the application's root path), else None:
    a template parameter matches one whole, non-empty path segment."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    token = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
    return token if token and "/" not in token else None


class WebhookDirect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = webhook_token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        scope["route"] = DECLARED
        response: Response
        try:
            response = await receive_webhook(token, request, request.app.state.settings)
        except ClientDisconnect:
            return  # hung up before its body was in: there is nobody to answer
        except Exception as failure:
            response = await error_response(request, failure)
        await response(scope, receive, send)
