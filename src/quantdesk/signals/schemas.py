"""Bodies of the signal, webhook and trading-analytics endpoints."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.core.money import Amount


class SignalAccepted(BaseModel):
    signal_id: int
    status: str = Field(description="pending (202), duplicate (200: signal_id is the first copy's)")
    duplicate_id: int | None = Field(default=None, description="The id under which this copy was recorded.")


class SignalEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    status: str
    reason: str | None


class SignalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    source: str
    status: str = Field(description="pending, executed, closed, rejected, cancelled or duplicate")
    reason: str | None
    format: str | None
    side: str | None
    symbol: str | None
    entry: Amount | None
    stop_loss: Amount | None
    take_profit: list[str]
    quantity: Amount | None
    order_type: str | None
    external_id: str | None
    duplicate_of: int | None
    order_id: int | None = Field(description="The order that opens its trade (or, for a close signal, closes).")
    close_order_id: int | None = Field(description="The order that closed the opposite position first.")
    entry_price: Amount | None
    exit_price: Amount | None
    exit_order_id: int | None
    realized_pnl: Amount | None = Field(description="Net of both commissions, once the trade is closed.")
    received_at: datetime
    executed_at: datetime | None
    closed_at: datetime | None
    raw_body: str


class SignalDetail(SignalRead):
    events: list[SignalEventRead]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=80)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    label: str
    prefix: str = Field(description="The start of the token, to tell tokens apart; the rest is never shown again.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class WebhookCreated(WebhookRead):
    token: str = Field(description="Shown once: the secret part of the URL.")
    url: str = Field(description="Paste this into the TradingView alert's Webhook URL.")


class TradeStats(BaseModel):
    signals: int
    rejected: int
    duplicates: int
    pending: int
    open_trades: int
    closed_trades: int
    wins: int
    losses: int
    win_rate: float | None = Field(description="Wins over closed trades; null before the first close.")
    average_win: Amount | None
    average_loss: Amount | None
    profit_factor: float | None = Field(description="Gross wins over gross losses; null without a loss.")
    total_pnl: Amount


class SymbolTradeStats(TradeStats):
    symbol: str


class TradingAnalytics(TradeStats):
    by_symbol: list[SymbolTradeStats]
