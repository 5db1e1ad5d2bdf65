"""Jinja2 set-up: the templates, number and time filters, and the page renderer."""

import math
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from quantdesk import __version__
from quantdesk.web.session import CSRF_FIELD, cookie_key, csrf_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def number(value: Any, digits: int = 2) -> str:
    """Grouped thousands, fixed decimals; a dash for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):,.{digits}f}" if isinstance(value, float | int) else f"{Decimal(value):,.{digits}f}"


def signed(value: Any, digits: int = 2) -> str:
    """With its sign; what rounds to zero shows as 0.00, never -0.00."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    rounded = round(float(value), digits)
    return f"{0.0:,.{digits}f}" if rounded == 0 else f"{rounded:+,.{digits}f}"


def price(value: Decimal | str | None, precision: int | None = None) -> str:
    """A price at its instrument's precision (``price_precision``); as stored when the instrument has none."""
    if value is None or value == "" or precision is None:
        return amount(value)
    return f"{Decimal(value):,.{precision}f}"


def signed_price(value: Any, precision: int | None = None) -> str:
    """A price change with its sign, at the instrument's precision (two decimals when it has none)."""
    return signed(value, 2 if precision is None else precision)


def amount(value: Decimal | str | None) -> str:
    """A price or quantity as stored (up to 8 decimals), without trailing zeros beyond two."""
    if value is None or value == "":
        return "–"
    exact = Decimal(value)
    cents = exact.quantize(Decimal("0.01"))
    return f"{cents:,.2f}" if exact == cents else f"{exact.normalize():,f}"


def money(value: Decimal | None) -> str:
    """Cash and values to the cent, for reading (the ledger keeps every decimal)."""
    return "–" if value is None else f"{Decimal(value):,.2f}"


def moment(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.hour == stamp.minute == stamp.second == 0:
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def tone(value: Any) -> str:
    """The CSS class of a gain or a loss."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return "up" if float(value) > 0 else "down" if float(value) < 0 else ""


# Scripts only from this server (the pages hold no inline script); Plotly.js adds <style> elements.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

templates.env.filters.update(
    money=money,
    number=number,
    signed=signed,
    amount=amount,
    price=price,
    signed_price=signed_price,
    moment=moment,
    tone=tone,
)
templates.env.globals.update(version=__version__, plotly_version=version("plotly"), csrf_field=CSRF_FIELD)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    """A page, with what every page needs: the signed-in user and their form token."""
    key = cookie_key(request)
    viewer = getattr(request.state, "viewer", None)
    page = {
        "viewer": viewer,
        "csrf": csrf_token(key) if key and viewer is not None else "",
        "settings": request.app.state.settings,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, page, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # pages may show an account; never keep them in a cache
    response.headers.update(SECURITY_HEADERS)
    return response
