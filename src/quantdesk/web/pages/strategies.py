"""The strategy page: write a rule strategy, check it (errors shown where they are), save it as a new
version, then backtest or sweep it on the backtest page."""

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.service import Principal
from quantdesk.api.deps import SessionDep
from quantdesk.backtest import strategy_service
from quantdesk.core.errors import NotFound, QuantdeskError, ValidationFailed
from quantdesk.web.session import Form, Member, Viewer
from quantdesk.web.templating import render

router = APIRouter()
EXAMPLE = {
    "name": "rsi_dip",
    "description": "Buy a dip in RSI; out on the recovery or after 20 bars.",
    "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
    "entry": "crosses_below(rsi(close, n), lo)",
    "exit": "crosses_above(rsi(close, n), 70) or bars_held >= 20",
    "stop_loss_pct": 5,
}
MAX_DOCUMENT = 32 * 1024


def _document(text: str) -> dict[str, Any]:
    if len(text) > MAX_DOCUMENT:
        raise ValidationFailed(f"the document is {len(text):,} characters; at most {MAX_DOCUMENT:,}")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed(f"the document is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationFailed("the document must be one JSON object, like the example")
    return document


def readable(document: dict[str, Any]) -> str:
    """The document with one field a line (each field's value on its line), as people write them."""
    fields = [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in document.items()]
    return "{\n" + ",\n".join(fields) + "\n}"


def pointers(document: dict[str, Any], errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each error with the expression it is in and a caret under its position, for the page to show."""
    shown = []
    for error in errors:
        text = document.get(error.get("field", ""))
        position = error.get("position")
        caret = " " * (position - 1) + "^" if isinstance(text, str) and isinstance(position, int) else None
        shown.append({**error, "text": text if caret else None, "caret": caret})
    return shown


async def _page(
    request: Request,
    session: AsyncSession,
    viewer: Principal | None,
    text: str,
    outcome: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    mine = []
    if viewer is not None:
        listed = await strategy_service.list_strategies(session, viewer, None)
        mine = [strategy for strategy in listed if strategy.kind == "rule"]
    context = {"page": "strategies", "text": text, "mine": mine, "outcome": outcome or {}}
    return render(request, "strategies.html", context, status)


@router.get("/dashboard/strategies", response_class=HTMLResponse)
async def strategy_page(request: Request, session: SessionDep, viewer: Viewer, name: str = "") -> HTMLResponse:
    """The editor, holding one of the viewer's strategies (?name=) or the example."""
    document: dict[str, Any] = EXAMPLE
    if name and viewer is not None:
        try:
            document = (await strategy_service.get_strategy(session, viewer, name, None, None)).document or EXAMPLE
        except NotFound:
            document = EXAMPLE
    return await _page(request, session, viewer, readable(document))


@router.post("/dashboard/strategies", response_class=HTMLResponse)
async def check_or_save(request: Request, session: SessionDep, member: Member, fields: Form) -> Response:
    """ "check" compiles the document; "save" stores it (a new strategy, or the next version of one)."""
    text = fields.get("document", "")
    document: dict[str, Any] = {}
    try:
        document = _document(text)
        checked = strategy_service.check(document)
        if fields.get("action") != "save":
            return await _page(request, session, member, text, {"checked": checked})
        mine = {s.name for s in await strategy_service.list_strategies(session, member, None) if s.kind == "rule"}
        if checked.name in mine:
            saved = await strategy_service.update_strategy(session, member, checked.name, document)
        else:
            saved = await strategy_service.create_strategy(session, member, document)
    except QuantdeskError as problem:
        errors = pointers(document, problem.errors) if problem.errors else []
        return await _page(request, session, member, text, {"error": problem.detail, "errors": errors}, 422)
    return RedirectResponse(f"/dashboard/strategies?name={saved.name}&saved={saved.version}", status_code=303)


@router.post("/dashboard/strategies/{name}/delete", response_class=HTMLResponse)
async def delete(session: SessionDep, member: Member, _fields: Form, name: str) -> Response:
    await strategy_service.delete_strategy(session, member, name)
    return RedirectResponse("/dashboard/strategies", status_code=303)
