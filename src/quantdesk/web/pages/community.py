"""The signal tester (what a message parses to, or why it is rejected) and the leaderboard."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.service import Principal
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.api.errors import status_for
from quantdesk.core.errors import QuantdeskError
from quantdesk.core.types import RowId
from quantdesk.gamification.leaderboard import leaderboard as ranking
from quantdesk.market import repository as market
from quantdesk.signals import intake
from quantdesk.signals import service as signals
from quantdesk.signals.parser import InvalidSignal, parse
from quantdesk.web.forms import build
from quantdesk.web.session import Form, Member, Viewer, check_origin
from quantdesk.web.templating import render

router = APIRouter()
EXAMPLES = (
    "BUY EURUSD @1.0850\nSL 1.0800\nTP 1.0900",
    '{"action": "sell", "ticker": "BTCUSD", "price": "64250.5", "contracts": "0.5", "market_position": "short"}',
    "XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025",
    "order buy @ 2 filled on ES1!. New strategy position is 0",
    "ID123,buy,EURUSD,sl=20pips,tp=40pips",
)
MAX_MESSAGE = 64 * 1024


async def _context(session: AsyncSession, viewer: Principal | None, message: str) -> dict[str, Any]:
    """The tester's page: the message, and the viewer's own accounts a test signal can go to."""
    mine = await accounts.list_accounts(session, viewer, viewer.user_id) if viewer is not None else []
    return {
        "page": "signals",
        "examples": EXAMPLES,
        "message": message,
        "accounts": [account for account in mine if viewer is not None and account.user_id == viewer.user_id],
    }


@router.get("/dashboard/signals", response_class=HTMLResponse)
async def tester(request: Request, session: SessionDep, viewer: Viewer) -> HTMLResponse:
    return render(request, "signals.html", await _context(session, viewer, EXAMPLES[0]))


@router.post("/dashboard/signals", response_class=HTMLResponse)
async def parse_message(request: Request, session: SessionDep, viewer: Viewer) -> HTMLResponse:
    """A dry run, as POST /api/v1/signals/parse: nothing is stored, so a form token is not needed."""
    check_origin(request)
    form = await request.form()
    message = str(form.get("message", ""))[:MAX_MESSAGE]
    context = await _context(session, viewer, message)
    try:
        context["parsed"] = parsed = parse(message, request.app.state.settings.signal_max_level_distance_pct)
    except InvalidSignal as invalid:
        context["rejected"] = invalid.detail
        return render(request, "signals.html", context, 422)
    context["known"] = await market.get_by_symbol(session, parsed.symbol) is not None
    return render(request, "signals.html", context)


@router.post("/dashboard/signals/send", response_class=HTMLResponse)
async def send_message(
    request: Request, session: SessionDep, settings: SettingsDep, member: Member, fields: Form
) -> Response:
    """Send the message to one of the viewer's accounts, as ``POST /api/v1/signals`` would (seed 002's
    dashboard sends test signals): it is stored, executed by the broker, and shown on the account page."""
    message = fields.get("message", "")[:MAX_MESSAGE]
    try:
        account = await signals.own_account(session, member, build(AccountChoice, fields).account_id)
    except QuantdeskError as problem:
        context = await _context(session, member, message)
        context["rejected"] = problem.detail
        return render(request, "signals.html", context, status_for(problem))
    recipient = intake.Recipient(account.id, account.generation)
    receipt = await intake.receive(session, recipient, message.encode(), "api", settings)
    if receipt.outcome == "rejected":
        context = await _context(session, member, message)
        context["rejected"] = f"{receipt.reason} (stored as rejected signal {receipt.signal_id})"
        return render(request, "signals.html", context, 422)
    return RedirectResponse(f"/dashboard/accounts/{account.id}#signal-{receipt.signal_id}", status_code=303)


class AccountChoice(BaseModel):
    account_id: RowId


@router.get("/dashboard/leaderboard", response_class=HTMLResponse)
async def leaderboard(
    request: Request,
    session: SessionDep,
    _viewer: Viewer,
    by: Literal["gems", "return_pct", "sharpe"] = "gems",
    window: Literal["7d", "30d", "all"] = "all",
    top: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HTMLResponse:
    rows = await ranking(session, by, window, top)
    context = {"page": "leaderboard", "rows": rows, "by": by, "window": window}
    return render(request, "leaderboard.html", context)
