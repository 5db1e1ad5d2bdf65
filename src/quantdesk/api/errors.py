"""The one table that turns errors into HTTP responses. No stack trace ever reaches a client."""

import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from quantdesk.core.db import UNREACHABLE, lost_to_a_concurrent_transaction, refers_to_a_deleted_row
from quantdesk.core.errors import (
    NUL_IN_TEXT,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    QuantdeskError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from quantdesk.core.logging import REQUEST_ID

logger = logging.getLogger("quantdesk.api")
CHARACTER_NOT_IN_REPERTOIRE = "22021"  # PostgreSQL's SQLSTATE for NUL in text

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[QuantdeskError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ValidationFailed, 422),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (UnsupportedMediaType, 415),
    (ProviderRateLimited, 429),
    (ProviderNotFound, 404),
    (ProviderRejected, 422),
    (ProviderError, 424),
)


def status_for(error: QuantdeskError) -> int:
    return next((status for cls, status in STATUS_BY_ERROR if isinstance(error, cls)), 400)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    body = {"error": code, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(QuantdeskError, exc)
    extra: dict[str, Any] = {"errors": exc.errors or None}
    if isinstance(exc, ProviderError):
        extra.update(provider=exc.provider, retryable=exc.retryable, retry_after_s=exc.retry_after_s)
        if exc.retry_after_s is not None:
            extra["headers"] = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    if isinstance(exc, TooManyRequests):
        extra.update(retry_after_s=exc.retry_after_s, headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
    if isinstance(exc, Unauthorized):
        extra["headers"] = {"WWW-Authenticate": "Bearer"}
    return problem(status_for(exc), exc.code, exc.detail, **extra)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic error items as ``{loc, reason[, row, field]}``; body rows are numbered from 1."""
    errors = []
    for item in items[:100]:
        loc = tuple(item.get("loc", ()))
        entry: dict[str, Any] = {"loc": _location(loc), "reason": item.get("msg", "invalid")}
        if len(loc) >= 2 and loc[0] == "body" and isinstance(loc[1], int):
            entry["row"] = loc[1] + 1
            entry["field"] = str(loc[2]) if len(loc) > 2 else None
        errors.append(entry)
    return errors


def _body_not_read_as_json(request: Request, items: Sequence[Any]) -> str | None:
    """Why a whole body was refused when it came with a content type other than JSON (``curl -d`` sends
    ``application/x-www-form-urlencoded``): FastAPI then validates its raw bytes, and pydantic's own
    words ("a valid dictionary") do not say what to change."""
    unread = any(tuple(item.get("loc", ())) == ("body",) and isinstance(item.get("input"), bytes) for item in items)
    if not unread:
        return None
    content_type = request.headers.get("content-type", "")
    return (
        f"the body must be a JSON document sent with Content-Type: application/json, not {content_type}"
        " (with curl: -H 'Content-Type: application/json')"
    )


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    # RequestValidationError (the request itself) and pydantic's ValidationError (a value built
    # from it inside a service, e.g. a symbol in the path) both mean: the caller sent bad input.
    items = cast(RequestValidationError | ValidationError, exc).errors()
    errors = validation_errors(items)
    if not_json := _body_not_read_as_json(request, items):
        return problem(415, "unsupported_media_type", not_json, errors=errors)
    first = errors[0] if errors else {"loc": "request", "reason": "invalid"}
    detail = f"the request is invalid: {first['loc']}: {first['reason']}"
    if len(items) > 1:
        detail += f" (and {len(items) - 1} more problem(s) listed in errors)"
    return problem(422, "validation_failed", detail, errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if exc.status_code == 404 and detail is None:
        detail = f"no such endpoint {request.method} {request.url.path}; see /docs for the API"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see /docs for the methods"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return problem(exc.status_code, code, detail or phrase, headers=getattr(exc, "headers", None))


async def _database_refused(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL refuses text holding NUL (character_not_in_repertoire): only a client can send that, so it
    is the client's error, whatever field it came in. A connection lost under the request (a database
    restart) is a 503 to retry: the pool has replaced its connections by then; so is a transaction the
    database ended to let a concurrent one go on (a deadlock). A row referring to one a concurrent request
    deleted is a 409. Any other database error is unexpected."""
    error = cast(DBAPIError, exc)
    if getattr(error.orig, "pgcode", None) == CHARACTER_NOT_IN_REPERTOIRE:
        return problem(422, "validation_failed", NUL_IN_TEXT)
    if (lost_to := lost_to_a_concurrent_transaction(error)) is not None:
        logger.warning("%s ended the transaction of %s %s", lost_to, request.method, request.url.path)
        detail = (
            f"the database ended this request's transaction because of {lost_to} with a concurrent request;"
            " nothing was stored: retry the request"
        )
        return problem(503, "database_conflict", detail, headers={"Retry-After": "1"})
    if refers_to_a_deleted_row(error):
        detail = (
            "something this request refers to (an asset, an account, an order) was deleted by another request"
            " while it was answered; nothing was stored"
        )
        return problem(409, "conflict", detail)
    if error.connection_invalidated:
        logger.warning("the database connection was lost under %s %s", request.method, request.url.path)
        detail = "the connection to the database was lost while answering; retry the request"
        return problem(503, "database_unavailable", detail, headers={"Retry-After": "1"})
    return await _unexpected(request, exc)


async def _database_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down, restarting or out of connections: nothing was stored, and the same request
    will work once it is back (a 5xx also makes TradingView resend the alert)."""
    logger.error("the database cannot be reached (%r) on %s %s", exc, request.method, request.url.path)
    detail = f"the database cannot be reached right now ({type(exc).__name__}); nothing was stored, retry shortly"
    return problem(503, "database_unavailable", detail, headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    logger.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
    return problem(
        500,
        "internal_error",
        f"an unexpected error occurred (incident {incident}); it was logged. Please report it.",
        request_id=REQUEST_ID.get(),
    )


async def error_response(request: Request, exc: Exception) -> Response:
    """The answer the application's error table gives ``exc``, as its middleware would, for code that
    runs outside it (``signals.direct``): the handler of the nearest class in the exception's MRO."""
    handlers: dict[Any, Any] = request.app.exception_handlers
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)  # Exception has one
    response: Response = await handler(request, exc)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QuantdeskError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(ValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_refused)
    for unreachable in UNREACHABLE:
        app.add_exception_handler(unreachable, _database_unreachable)
    app.add_exception_handler(Exception, _unexpected)
