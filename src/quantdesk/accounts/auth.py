"""Who is calling: the Bearer API key of a request, as FastAPI dependencies.

- ``OptionalUser``: the caller, or None without a key (a key that is present must be valid).
- ``CurrentUser``: a signed-in caller (401 without a key).
- ``AdminUser``: a signed-in admin (403 for a trader).
- ``market_access``: the rule for market data and research endpoints: reads are public unless
  ``QUANTDESK_PRIVATE``; research runs (POST backtests, sweeps, forecasts) need a user; changes to
  instruments and bars need an admin.
"""

import logging
from typing import Annotated

from fastapi import Depends, Request

from quantdesk.accounts import service
from quantdesk.accounts.service import Principal
from quantdesk.api.deps import WRITE_METHODS, SessionDep, SettingsDep
from quantdesk.core.db import session_scope
from quantdesk.core.errors import Forbidden, Unauthorized

logger = logging.getLogger("quantdesk.auth")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    return key.strip()


async def required_key(request: Request) -> str:
    """The request's API key, to be checked by the work it comes with (a batch of orders checks the keys of
    all its requests in its own transaction)."""
    key = bearer_key(request)
    if key is None:
        raise Unauthorized(NO_KEY)
    return key


BearerKey = Annotated[str, Depends(required_key)]
NO_KEY = "this needs an API key: send 'Authorization: Bearer <key>'"


async def optional_user(request: Request, session: SessionDep) -> Principal | None:
    key = bearer_key(request)
    if key is None:
        return None
    principal, due = await service.authenticate(session, key)
    if due and principal.key_id is not None:
        if request.method in WRITE_METHODS:  # the request's transaction writes anyway
            await service.touch_key(session, principal.key_id)
        else:
            await _touch_apart(request, principal.key_id)
    return principal


async def _touch_apart(request: Request, key_id: int) -> None:
    """A read request stays a read: the last-used time goes in its own short transaction, and a busy
    database costs only that update, never the request."""
    try:
        async with session_scope(request.app.state.sessionmaker, write=True) as own:
            await service.touch_key(own, key_id)
    except Exception:
        logger.warning("could not record the last use of key %s", key_id, exc_info=True)


OptionalUser = Annotated[Principal | None, Depends(optional_user)]


async def current_user(caller: OptionalUser) -> Principal:
    if caller is None:
        raise Unauthorized(NO_KEY)
    return caller


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admin_user(caller: CurrentUser) -> Principal:
    if not caller.is_admin:
        raise Forbidden(f"only an admin may do this; {caller.username} is a {caller.role}")
    return caller


AdminUser = Annotated[Principal, Depends(admin_user)]


async def public_read(settings: SettingsDep, caller: OptionalUser) -> None:
    """Anyone may read, unless the server is private (``QUANTDESK_PRIVATE``)."""
    if settings.private and caller is None:
        raise Unauthorized("this server is private (QUANTDESK_PRIVATE): send an API key")


async def market_access(request: Request, settings: SettingsDep, caller: OptionalUser) -> None:
    """Instruments, bars and providers: reads public (unless private), changes by admins."""
    if request.method in READ_METHODS:
        await public_read(settings, caller)
    else:
        await admin_user(await current_user(caller))


async def research_access(request: Request, settings: SettingsDep, caller: OptionalUser) -> None:
    """Backtests, sweeps, forecasts and reports: reads public (unless private), runs by any user."""
    if request.method in READ_METHODS:
        await public_read(settings, caller)
    else:
        await current_user(caller)
