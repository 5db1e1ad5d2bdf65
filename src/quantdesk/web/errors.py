"""Errors on dashboard pages answer as pages, not JSON: the same statuses, in words, inside the layout."""

from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from quantdesk.api.errors import status_for, validation_errors
from quantdesk.core.errors import QuantdeskError
from quantdesk.web.session import SignInNeeded
from quantdesk.web.templating import render

PREFIX = "/dashboard"


def _page(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"title": HTTPStatus(status).phrase, "detail": detail}, status)


def _sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/signin?next={quote(target)}", status_code=303)


def install(app: FastAPI) -> None:
    """Wrap the API's handlers: a dashboard path gets a page, any other path the API's JSON problem."""
    app.add_exception_handler(SignInNeeded, _sign_in)
    for cls in (QuantdeskError, RequestValidationError, StarletteHTTPException):
        api_handler = app.exception_handlers[cls]

        async def handler(request: Request, exc: Exception, api_handler=api_handler) -> Response:  # type: ignore[no-untyped-def]
            if not request.url.path.startswith(PREFIX):
                return await api_handler(request, exc)  # type: ignore[no-any-return]
            if isinstance(exc, QuantdeskError):
                return _page(request, status_for(exc), exc.detail)
            if isinstance(exc, RequestValidationError):
                problems = validation_errors(exc.errors())
                return _page(request, 422, "; ".join(f"{p['loc']}: {p['reason']}" for p in problems[:3]))
            status = getattr(exc, "status_code", 500)
            detail = f"there is no page {request.url.path}" if status == 404 else str(getattr(exc, "detail", ""))
            return _page(request, status, detail)

        app.add_exception_handler(cls, handler)
