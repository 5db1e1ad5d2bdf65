"""Who is using the dashboard: an API key kept in an HttpOnly, SameSite cookie, and the CSRF check of forms.

The cookie holds the key itself, checked on every request exactly as a Bearer header would be, so
revoking the key or disabling the user signs the browser out. The JSON API never reads the cookie:
only the dashboard's own routes (and the WebSocket, which checks the page's origin) accept it.

Forms carry a token derived from the key (an HMAC the page can print but another site cannot
compute), and every unsafe request must come from this server's own origin when the browser says
where it comes from.
"""

import hashlib
import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from quantdesk.accounts import service as accounts
from quantdesk.accounts.service import Principal
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import Forbidden, Unauthorized

COOKIE = "quantdesk_key"
COOKIE_MAX_AGE_S = 30 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_CONTEXT = b"quantdesk dashboard form"


class SignInNeeded(Exception):
    """The page needs a signed-in user: the dashboard answers with the sign-in page."""


def cookie_key(connection: HTTPConnection) -> str | None:
    key = connection.cookies.get(COOKIE)
    return key.strip() if key and key.strip() else None


async def principal_of_key(session: AsyncSession, key: str | None) -> Principal | None:
    if key is None:
        return None
    try:
        principal, _ = await accounts.authenticate(session, key)
    except (Unauthorized, Forbidden):
        return None  # a revoked key or a disabled user: simply signed out
    return principal


async def viewer(request: Request, session: SessionDep, settings: SettingsDep) -> Principal | None:
    """The signed-in user, or None; on a private server, pages need one."""
    principal = await principal_of_key(session, cookie_key(request))
    if principal is None and settings.private:
        raise SignInNeeded
    request.state.viewer = principal
    return principal


Viewer = Annotated[Principal | None, Depends(viewer)]


async def member(caller: Viewer) -> Principal:
    if caller is None:
        raise SignInNeeded
    return caller


Member = Annotated[Principal, Depends(member)]


def csrf_token(key: str) -> str:
    return hmac.new(key.encode(), CSRF_CONTEXT, hashlib.sha256).hexdigest()


def same_origin(connection: HTTPConnection) -> bool:
    """False only when the browser names another origin (Origin, else Referer) than this server's host."""
    source = connection.headers.get("origin") or connection.headers.get("referer")
    if not source or source == "null":
        return source is None
    return urlsplit(source).netloc.lower() == (connection.headers.get("host") or "").lower()


def check_origin(request: Request) -> None:
    if not same_origin(request):
        raise Forbidden("this form was sent from another site; open the dashboard and send it from there")


async def checked_form(request: Request) -> dict[str, str]:
    """The fields of a signed-in user's form, after the origin and CSRF checks."""
    check_origin(request)
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    key = cookie_key(request)
    if key is None or not hmac.compare_digest(fields.get(CSRF_FIELD, ""), csrf_token(key)):
        raise Forbidden("the form has expired or was not sent from this dashboard; reload the page and try again")
    return fields


Form = Annotated[dict[str, str], Depends(checked_form)]
