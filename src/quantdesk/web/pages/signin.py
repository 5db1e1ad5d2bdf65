"""Signing in with an API key (kept in an HttpOnly cookie), out, and open sign-up when the server allows it."""

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from quantdesk.accounts import service as accounts
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import Forbidden, QuantdeskError, Unauthorized
from quantdesk.web.session import COOKIE, COOKIE_MAX_AGE_S, check_origin, principal_of_key
from quantdesk.web.templating import render

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a dashboard path of this server: never an address elsewhere (an open redirect)."""
    if not target:
        return "/dashboard/accounts"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard") or target.startswith("//"):
        return "/dashboard/accounts"
    return target


def signed_in(request: Request, key: str, target: str) -> RedirectResponse:
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/dashboard/signin", response_class=HTMLResponse)
async def signin_page(request: Request, session: SessionDep, next: str = "") -> HTMLResponse:
    request.state.viewer = await principal_of_key(session, request.cookies.get(COOKIE))
    return render(request, "signin.html", {"next": safe_next(next), "page": "signin"})


@router.post("/dashboard/signin", response_class=HTMLResponse)
async def signin(request: Request, session: SessionDep) -> Response:
    check_origin(request)
    form = await request.form()
    key, target = str(form.get("api_key", "")).strip(), str(form.get("next", ""))
    try:
        await accounts.authenticate(session, key)
    except (Unauthorized, Forbidden) as problem:
        request.state.viewer = None
        context = {"next": safe_next(target), "error": problem.detail, "page": "signin"}
        return render(request, "signin.html", context, 401 if isinstance(problem, Unauthorized) else 403)
    return signed_in(request, key, target)


@router.post("/dashboard/signup", response_class=HTMLResponse)
async def signup(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Open sign-up (QUANTDESK_OPEN_SIGNUP): a new trader, their key shown once, and signed in."""
    check_origin(request)
    request.state.viewer = None
    form = await request.form()
    if not settings.open_signup:
        raise Forbidden("sign-up is closed on this server; ask an admin for an API key")
    username = str(form.get("username", "")).strip()
    try:
        user, key = await accounts.create_user(session, username)
    except QuantdeskError as problem:
        context = {"next": "/dashboard/accounts", "signup_error": problem.detail, "username": username}
        return render(request, "signin.html", {**context, "page": "signin"}, 422)
    request.state.viewer = accounts.principal_of(user)
    response = render(request, "welcome.html", {"api_key": key, "page": "signin"}, 201)
    response.set_cookie(
        COOKIE, key, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
    return response


@router.post("/dashboard/signout")
async def signout(request: Request) -> Response:
    """No CSRF token needed to sign out, only this server's origin: the worst a forger can do is sign you out."""
    check_origin(request)
    response = RedirectResponse("/dashboard/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response
