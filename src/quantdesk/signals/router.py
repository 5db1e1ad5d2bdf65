"""POST /api/v1/signals/parse: what a message would order, or why it is refused; stores nothing."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from quantdesk.accounts.auth import CurrentUser
from quantdesk.core.money import Amount
from quantdesk.signals.parser import parse

router = APIRouter(prefix="/api/v1/signals", tags=["signals"])

BODY_DOC = {
    "requestBody": {
        "content": {
            "text/plain": {"schema": {"type": "string"}, "example": "BUY EURUSD @1.0850\nSL 1.0800\nTP 1.0900"},
            "application/json": {"schema": {"type": "object"}, "example": {"action": "buy", "ticker": "AAPL"}},
        }
    }
}


class DistanceRead(BaseModel):
    value: Amount
    unit: str


class ParsedRead(BaseModel):
    side: str = Field(description="buy, sell or close")
    symbol: str
    entry: Amount | None
    stop_loss: Amount | None
    take_profit: list[Amount]
    stop_loss_distance: DistanceRead | None
    take_profit_distances: list[DistanceRead]
    quantity: Amount | None
    order_type: str | None = Field(description="market, limit or null (the account's default)")
    signal_id: str | None
    format: str


@router.post("/parse", response_model=ParsedRead, openapi_extra=BODY_DOC)
async def parse_signal(request: Request, _caller: CurrentUser) -> ParsedRead:
    """Read a signal as the webhook would: JSON or text, decided from the body, not the content type."""
    signal = parse(await request.body())
    return ParsedRead.model_validate(signal, from_attributes=True)
