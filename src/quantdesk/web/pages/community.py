"""The signal tester (what a message parses to, or why it is rejected) and the leaderboard."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from quantdesk.api.deps import SessionDep
from quantdesk.gamification.leaderboard import leaderboard as ranking
from quantdesk.market import repository as market
from quantdesk.signals.parser import InvalidSignal, parse
from quantdesk.web.session import Viewer, check_origin
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


@router.get("/dashboard/signals", response_class=HTMLResponse)
async def tester(request: Request, _viewer: Viewer) -> HTMLResponse:
    return render(request, "signals.html", {"page": "signals", "examples": EXAMPLES, "message": EXAMPLES[0]})


@router.post("/dashboard/signals", response_class=HTMLResponse)
async def parse_message(request: Request, session: SessionDep, _viewer: Viewer) -> HTMLResponse:
    """A dry run, as POST /api/v1/signals/parse: nothing is stored, so a form token is not needed."""
    check_origin(request)
    form = await request.form()
    message = str(form.get("message", ""))[:MAX_MESSAGE]
    context: dict[str, Any] = {"page": "signals", "examples": EXAMPLES, "message": message}
    try:
        context["parsed"] = parsed = parse(message)
    except InvalidSignal as invalid:
        context["rejected"] = invalid.detail
        return render(request, "signals.html", context, 422)
    context["known"] = await market.get_by_symbol(session, parsed.symbol) is not None
    return render(request, "signals.html", context)


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
