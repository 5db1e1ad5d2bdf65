"""Signals over HTTP: the TradingView webhook, the authenticated API, webhook tokens and analytics."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from quantdesk.accounts import service as accounts
from quantdesk.accounts.auth import CurrentUser
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.group_commit import GroupCommit
from quantdesk.core.money import Amount
from quantdesk.core.types import RowId, UtcInstant
from quantdesk.signals import analytics, gate, intake, tokens, webhook
from quantdesk.signals import service as signals
from quantdesk.signals.intake import Receipt
from quantdesk.signals.models import Signal, WebhookToken
from quantdesk.signals.parser import parse
from quantdesk.signals.schemas import (
    SignalAccepted,
    SignalDetail,
    SignalRead,
    TradingAnalytics,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)

router = APIRouter(prefix="/api/v1/signals", tags=["signals"])
webhook_tokens = APIRouter(prefix="/api/v1/accounts/{account_id}/webhooks", tags=["signals"])
webhooks = APIRouter(prefix="/webhooks", tags=["signals"])
trading_analytics = APIRouter(prefix="/api/v1/analytics", tags=["signals"])

BODY_DOC = {
    "requestBody": {
        "content": {
            "text/plain": {"schema": {"type": "string"}, "example": "BUY EURUSD @1.0850\nSL 1.0800\nTP 1.0900"},
            "application/json": {"schema": {"type": "object"}, "example": {"action": "buy", "ticker": "AAPL"}},
        }
    }
}
RECEIPT_DOC: dict[int | str, dict[str, Any]] = {
    200: {"model": SignalAccepted, "description": "A copy of an earlier signal: signal_id is the first one's."},
    422: {"description": "Not a valid signal: detail says why; it is stored as rejected (signal_id)."},
}


class DistanceRead(BaseModel):
    value: Amount
    unit: str = Field(description="pips, points (whole units of price) or percent (of the entry or last price)")


class ParsedRead(BaseModel):
    side: str = Field(description="buy, sell or close")
    symbol: str
    entry: Amount | None
    stop_loss: Amount | None
    take_profit: list[Amount]
    stop_loss_distance: DistanceRead | None
    take_profit_distances: list[DistanceRead]
    quantity: Amount | None
    order_type: str | None = Field(description="market, limit, stop (resting at the entry) or null (market)")
    signal_id: str | None
    format: str


def answer(receipt: Receipt) -> JSONResponse:
    """202 for a new signal, 200 for a copy, 422 with the reason for an invalid one. Returned, not raised:
    the request's transaction commits, so even a rejected signal is kept."""
    if receipt.outcome == "rejected":
        body = {"error": "invalid_signal", "detail": receipt.reason, "signal_id": receipt.signal_id}
        return JSONResponse(body, status_code=422)
    if receipt.outcome == "duplicate":
        body = {"signal_id": receipt.signal_id, "status": "duplicate", "duplicate_id": receipt.stored_id}
        return JSONResponse(body)
    return JSONResponse({"signal_id": receipt.signal_id, "status": "pending"}, status_code=202)


@router.post("/parse", response_model=ParsedRead, openapi_extra=BODY_DOC)
async def parse_signal(request: Request, settings: SettingsDep, _caller: CurrentUser) -> ParsedRead:
    """Read a signal as the webhook would: JSON or text, decided from the body, not the content type.
    Stores nothing."""
    signal = parse(await request.body(), settings.signal_max_level_distance_pct)
    return ParsedRead.model_validate(signal, from_attributes=True)


@router.post(
    "",
    response_model=SignalAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=RECEIPT_DOC,
    openapi_extra=BODY_DOC,
)
async def send_signal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    account_id: RowId | None = None,
    user_id: RowId | None = None,
) -> JSONResponse:
    """A signal to one of your accounts (``account_id``), or to your first account (the seed's routing by
    ``user_id``, which must be your own)."""
    body = await gate.read_body(request, int(settings.webhook_max_body_kb * 1024))
    if account_id is not None:
        account = await signals.own_account(session, caller, account_id)
    else:
        account = await signals.default_account(session, caller, user_id)
    recipient = intake.Recipient(account.id, account.generation)
    return answer(await intake.receive(session, recipient, body, "api", settings))


@router.get("", response_model=list[SignalRead])
async def list_signals(
    session: SessionDep,
    caller: CurrentUser,
    account_id: RowId | None = None,
    status: str | None = Query(default=None, description="pending, executed, closed, rejected, cancelled, duplicate"),
    since: UtcInstant | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Signal]:
    return await signals.list_signals(session, caller, account_id, status, since, limit)


@router.get("/{signal_id}", response_model=SignalDetail)
async def get_signal(session: SessionDep, caller: CurrentUser, signal_id: RowId) -> SignalDetail:
    signal = await signals.get_signal(session, caller, signal_id)
    events = await signals.signal_events(session, signal)
    return SignalDetail.model_validate({**SignalRead.model_validate(signal).model_dump(), "events": events})


@router.post("/{signal_id}/cancel", response_model=SignalRead)
async def cancel_signal(session: SessionDep, caller: CurrentUser, signal_id: RowId) -> Signal:
    return await signals.cancel_signal(session, caller, signal_id)


@router.post("/{signal_id}/close", response_model=SignalRead)
async def close_signal(session: SessionDep, settings: SettingsDep, caller: CurrentUser, signal_id: RowId) -> Signal:
    return await signals.close_signal(session, caller, signal_id, settings)


# Webhook tokens --------------------------------------------------------------------------------------


def webhook_url(request: Request, public_url: str | None, secret: str) -> str:
    base = (public_url or str(request.base_url)).rstrip("/")
    return f"{base}/webhooks/{secret}"


@webhook_tokens.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    account_id: RowId,
    body: WebhookCreate | None = None,
) -> WebhookCreated:
    """A new webhook URL for the account; the token is shown this once."""
    account = await signals.own_account(session, caller, account_id)
    token, secret = await tokens.create(session, account, body.label if body else "")
    return _created(request, settings.public_url, token, secret)


def _created(request: Request, public_url: str | None, token: WebhookToken, secret: str) -> WebhookCreated:
    read = WebhookRead.model_validate(token).model_dump()
    return WebhookCreated.model_validate({**read, "token": secret, "url": webhook_url(request, public_url, secret)})


@webhook_tokens.get("", response_model=list[WebhookRead])
async def list_webhooks(session: SessionDep, caller: CurrentUser, account_id: RowId) -> list[WebhookToken]:
    account = await accounts.get_account(session, account_id, caller)
    return await tokens.list_tokens(session, account)


@webhook_tokens.post("/{token_id}/rotate", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def rotate_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUser,
    account_id: RowId,
    token_id: RowId,
) -> WebhookCreated:
    """Replace the token's secret: the old URL stops working now; the new one is shown this once."""
    account = await signals.own_account(session, caller, account_id)
    token, secret = await tokens.rotate(session, account, token_id)
    return _created(request, settings.public_url, token, secret)


@webhook_tokens.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_webhook(session: SessionDep, caller: CurrentUser, account_id: RowId, token_id: RowId) -> Response:
    account = await signals.own_account(session, caller, account_id)
    await tokens.revoke(session, account, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The webhook itself ------------------------------------------------------------------------------------


@webhooks.post(
    "/{token}", response_model=SignalAccepted, status_code=202, responses=RECEIPT_DOC, openapi_extra=BODY_DOC
)
async def receive_webhook(token: str, request: Request, settings: SettingsDep) -> JSONResponse:
    """TradingView's alert webhook: no header needed, the token in the URL names the account. Answers 202
    with the signal id as soon as the signal and its order are stored; the broker executes it next.
    Signals arriving together are stored together, in one transaction (``app.state.signal_desk``).

    Served by ``signals.direct``, which calls this function without FastAPI's routing: its parameters
    are all it may take."""
    gate.check_address(request, settings.webhook_allowed_ips, settings.trusted_proxies)
    body = await gate.read_body(request, int(settings.webhook_max_body_kb * 1024))
    desk: GroupCommit[webhook.Delivery, Receipt] = request.app.state.signal_desk
    return answer(await desk.submit(webhook.Delivery(token, body)))


# Analytics ---------------------------------------------------------------------------------------------


@trading_analytics.get("/trading", response_model=TradingAnalytics)
async def trading_stats(
    session: SessionDep,
    caller: CurrentUser,
    account: Annotated[RowId | None, Query(description="One account; default: all of yours")] = None,
    symbol: str | None = None,
    start: UtcInstant | None = None,
    end: UtcInstant | None = None,
) -> dict[str, Any]:
    """Signals received, rejected and duplicated; closed trades with win rate, average win and loss,
    profit factor and total P&L, overall and by symbol, for signals received in [start, end)."""
    return await analytics.trading_analytics(session, caller, account, symbol, start, end)
