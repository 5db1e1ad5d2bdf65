"""The paper account pages: cash, positions and orders that update live, the order ticket, deposits and
withdrawals, and webhook tokens. Only the signed-in user's own accounts, whatever their role."""

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account, User
from quantdesk.accounts.schemas import AccountCreate, AmountBody
from quantdesk.accounts.service import Principal
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.api.errors import status_for
from quantdesk.core.config import Settings
from quantdesk.core.errors import NotFound, QuantdeskError
from quantdesk.core.types import RowId
from quantdesk.market import service as market
from quantdesk.realtime.events import all_or_nothing
from quantdesk.signals import service as signals
from quantdesk.signals import tokens
from quantdesk.signals.models import WebhookToken
from quantdesk.signals.router import webhook_url
from quantdesk.trading import cash, portfolio
from quantdesk.trading import service as trading
from quantdesk.trading.schemas import OrderCreate
from quantdesk.web.forms import build, given
from quantdesk.web.session import Form, Member, SignInNeeded
from quantdesk.web.templating import render

router = APIRouter()
ORDER_FIELDS = ("symbol", "side", "type", "quantity", "limit_price", "stop_price", "time_in_force")
BRACKET_FIELDS = ("take_profit", "stop_loss")
# What a TradingView strategy alert's message should be: placeholders TradingView fills in (see docs/signals.md).
ALERT_TEMPLATE = (
    '{"action": "{{strategy.order.action}}", "ticker": "{{ticker}}", "price": "{{close}}", '
    '"contracts": "{{strategy.order.contracts}}", "market_position": "{{strategy.market_position}}"}'
)
MANUAL_TEMPLATE = "BUY {{ticker}} @{{close}}\nSL ...\nTP ..."


async def own_account(session: AsyncSession, caller: Principal, account_id: RowId) -> Account:
    """The caller's account; anyone else's (an admin's view included) does not exist here."""
    account = await session.get(Account, account_id)
    if account is None or account.user_id != caller.user_id:
        raise NotFound(f"you have no account {account_id}")
    return account


@router.get("/dashboard/accounts", response_class=HTMLResponse)
async def account_list(request: Request, session: SessionDep, caller: Member) -> HTMLResponse:
    return await _account_list(request, session, caller)


async def _account_list(
    request: Request, session: AsyncSession, caller: Principal, error: str | None = None, status: int = 200
) -> HTMLResponse:
    rows = [await portfolio.value(session, a) for a in await accounts.list_accounts(session, caller, caller.user_id)]
    return render(request, "accounts.html", {"page": "accounts", "valuations": rows, "error": error}, status)


@router.post("/dashboard/accounts", response_class=HTMLResponse)
async def open_account(request: Request, session: SessionDep, caller: Member, fields: Form) -> Response:
    owner = await session.get(User, caller.user_id)
    if owner is None:  # deleted since the cookie was checked
        raise SignInNeeded
    try:
        async with all_or_nothing(session):
            body = build(
                AccountCreate, {"initial_deposit": "0", **given(fields, "name", "currency", "initial_deposit")}
            )
            account = await accounts.open_account(session, owner, body.name, body.currency, body.initial_deposit)
    except QuantdeskError as problem:
        return await _account_list(request, session, caller, problem.detail, 422)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)


async def _context(request: Request, session: AsyncSession, caller: Principal, account: Account) -> dict[str, Any]:
    valuation = await portfolio.value(session, account)
    return {
        "page": "accounts",
        "account": account,
        "valuation": valuation,
        "open_orders": await trading.list_orders(session, caller, account.id, "open", limit=100),
        "orders": await trading.list_orders(session, caller, account.id, "closed", limit=50),
        "signals": await signals.list_signals(session, caller, account.id, limit=20),
    }


async def _account_page(
    request: Request,
    session: AsyncSession,
    caller: Principal,
    account: Account,
    **extra: Any,
) -> HTMLResponse:
    status = extra.pop("status", 200)
    context = await _context(request, session, caller, account)
    context.update(
        instruments=[view.instrument for view in await market.list_instruments(session)],
        webhooks=await tokens.list_tokens(session, account),
        alert_template=ALERT_TEMPLATE,
        manual_template=MANUAL_TEMPLATE,
        order_form=extra.pop("order_form", {}),
        **extra,
    )
    return render(request, "account.html", context, status)


async def _refused(
    request: Request, session: AsyncSession, caller: Principal, account: Account, problem: QuantdeskError, **extra: Any
) -> HTMLResponse:
    """The page again, with why the action was refused (it changed nothing: see all_or_nothing)."""
    return await _account_page(
        request, session, caller, account, error=problem.detail, status=status_for(problem), **extra
    )


@router.get("/dashboard/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(request: Request, session: SessionDep, caller: Member, account_id: RowId) -> HTMLResponse:
    return await _account_page(request, session, caller, await own_account(session, caller, account_id))


@router.get("/dashboard/accounts/{account_id}/live", response_class=HTMLResponse)
async def account_live(request: Request, session: SessionDep, caller: Member, account_id: RowId) -> HTMLResponse:
    """The part of the page that changes: fetched again by the page when the WebSocket reports an event."""
    account = await own_account(session, caller, account_id)
    return render(request, "_account_live.html", await _context(request, session, caller, account))


@router.post("/dashboard/accounts/{account_id}/orders", response_class=HTMLResponse)
async def place_order(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Member, fields: Form, account_id: RowId
) -> Response:
    account = await own_account(session, caller, account_id)
    try:
        async with all_or_nothing(session):
            data: dict[str, Any] = given(fields, *ORDER_FIELDS)
            if fields.get("bracket") == "on":
                data.update(given(fields, *BRACKET_FIELDS))
            body = build(OrderCreate, {**data, "account_id": account.id})
            order, _ = await trading.place_order(session, caller, body, settings, source="dashboard")
    except QuantdeskError as problem:
        return await _refused(request, session, caller, account, problem, order_form=fields)
    return RedirectResponse(f"/dashboard/accounts/{account.id}?order={order.id}", status_code=303)


@router.post("/dashboard/accounts/{account_id}/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_order(
    request: Request, session: SessionDep, caller: Member, _fields: Form, account_id: RowId, order_id: RowId
) -> Response:
    account = await own_account(session, caller, account_id)
    try:
        async with all_or_nothing(session):
            order = await trading.get_order(session, caller, order_id)
            if order.account_id != account.id:
                raise NotFound(f"account {account.id} has no order {order_id}")
            await trading.cancel_order(session, caller, order_id)
    except QuantdeskError as problem:
        return await _refused(request, session, caller, account, problem)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)


async def _move_cash(
    request: Request, session: AsyncSession, caller: Principal, fields: dict[str, str], account_id: RowId, kind: str
) -> Response:
    await own_account(session, caller, account_id)
    account = await accounts.get_account(session, account_id, caller, lock=True)
    try:
        async with all_or_nothing(session):
            amount = build(AmountBody, given(fields, "amount")).amount
            await (cash.deposit if kind == "deposit" else cash.withdraw)(session, account, amount)
    except QuantdeskError as problem:
        return await _refused(request, session, caller, account, problem)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)


@router.post("/dashboard/accounts/{account_id}/deposit", response_class=HTMLResponse)
async def deposit(request: Request, session: SessionDep, caller: Member, fields: Form, account_id: RowId) -> Response:
    return await _move_cash(request, session, caller, fields, account_id, "deposit")


@router.post("/dashboard/accounts/{account_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, session: SessionDep, caller: Member, fields: Form, account_id: RowId) -> Response:
    return await _move_cash(request, session, caller, fields, account_id, "withdraw")


async def _show_webhook(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    caller: Principal,
    account: Account,
    token: WebhookToken,
    secret: str,
    done: str,
) -> HTMLResponse:
    """The account page with a token's URL, shown this once (only its digest is stored)."""
    url = webhook_url(request, settings.public_url, secret)
    notice = f"Webhook '{token.label or token.prefix}' {done}: copy its URL now, it is shown only this once"
    return await _account_page(request, session, caller, account, notice=notice, new_webhook=url)


@router.post("/dashboard/accounts/{account_id}/webhooks", response_class=HTMLResponse)
async def create_webhook(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Member, fields: Form, account_id: RowId
) -> HTMLResponse:
    """A new token, shown on this answer only (it is stored hashed)."""
    account = await own_account(session, caller, account_id)
    token, secret = await tokens.create(session, account, fields.get("label", "").strip()[:80])
    return await _show_webhook(request, session, settings, caller, account, token, secret, "created")


@router.post("/dashboard/accounts/{account_id}/webhooks/{token_id}/rotate", response_class=HTMLResponse)
async def rotate_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: Member,
    _fields: Form,
    account_id: RowId,
    token_id: RowId,
) -> HTMLResponse:
    """A new secret for the same use: the old URL stops working now; the new one is shown this once."""
    account = await own_account(session, caller, account_id)
    try:
        async with all_or_nothing(session):
            token, secret = await tokens.rotate(session, account, token_id)
    except QuantdeskError as problem:
        return await _refused(request, session, caller, account, problem)
    return await _show_webhook(request, session, settings, caller, account, token, secret, "rotated")


@router.post("/dashboard/accounts/{account_id}/signals/{signal_id}/{action}", response_class=HTMLResponse)
async def signal_action(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: Member,
    _fields: Form,
    account_id: RowId,
    signal_id: RowId,
    action: Literal["close", "cancel"],
) -> Response:
    """Close an executed signal's trade at the market, or cancel a pending signal."""
    account = await own_account(session, caller, account_id)
    try:
        async with all_or_nothing(session):
            signal = await signals.get_signal(session, caller, signal_id)
            if signal.account_id != account.id:
                raise NotFound(f"account {account.id} has no signal {signal_id}")
            if action == "close":
                await signals.close_signal(session, caller, signal_id, settings)
            else:
                await signals.cancel_signal(session, caller, signal_id)
    except QuantdeskError as problem:
        return await _refused(request, session, caller, account, problem)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)


@router.post("/dashboard/accounts/{account_id}/reset", response_class=HTMLResponse)
async def reset_account(
    request: Request, session: SessionDep, caller: Member, fields: Form, account_id: RowId
) -> Response:
    """Back to the opening deposit; the form asks for the account's name, so a stray click does nothing."""
    account = await own_account(session, caller, account_id)
    if fields.get("confirm", "").strip() != account.name:
        message = f"type the account's name ({account.name}) to confirm the reset"
        return await _account_page(request, session, caller, account, error=message, status=422)
    await trading.reset_account(session, caller, account.id)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)


@router.post("/dashboard/accounts/{account_id}/webhooks/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_webhook(
    request: Request, session: SessionDep, caller: Member, _fields: Form, account_id: RowId, token_id: RowId
) -> Response:
    account = await own_account(session, caller, account_id)
    await tokens.revoke(session, account, token_id)
    return RedirectResponse(f"/dashboard/accounts/{account.id}", status_code=303)
