"""Bodies of the trading endpoints. Amounts, prices and quantities travel as decimal strings."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from quantdesk.core.money import Amount, Positive
from quantdesk.core.types import RowId


class OrderCreate(BaseModel):
    """An order. Alpaca's spellings are understood as well: ``qty``, ``order_class``, and bracket legs as
    ``take_profit: {"limit_price": ...}`` and ``stop_loss: {"stop_price": ...}``."""

    model_config = ConfigDict(extra="forbid")

    account_id: RowId
    symbol: str = Field(min_length=1, max_length=32)
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    quantity: Positive = Field(validation_alias=AliasChoices("quantity", "qty"))
    limit_price: Positive | None = Field(default=None, description="limit and stop_limit orders")
    stop_price: Positive | None = Field(default=None, description="stop and stop_limit orders")
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "gtc"
    take_profit: Positive | None = Field(default=None, description="Bracket: a limit exit at this price.")
    stop_loss: Positive | None = Field(default=None, description="Bracket: a stop exit at this price.")
    order_class: Literal["simple", "bracket", "oto"] | None = Field(
        default=None,
        description="Optional, as Alpaca's: bracket has take_profit and stop_loss, oto one of them, simple neither.",
    )
    client_order_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Idempotency: the same id returns the same order."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_quantity(cls, data: Any) -> Any:
        if isinstance(data, dict) and "quantity" in data and "qty" in data:
            raise ValueError("give the quantity once: quantity or qty, not both")
        return data

    @field_validator("take_profit", mode="before")
    @classmethod
    def _alpaca_take_profit(cls, value: Any) -> Any:
        return _leg_price(value, "take_profit", "limit_price")

    @field_validator("stop_loss", mode="before")
    @classmethod
    def _alpaca_stop_loss(cls, value: Any) -> Any:
        return _leg_price(value, "stop_loss", "stop_price")

    @model_validator(mode="after")
    def _legs_match_the_class(self) -> "OrderCreate":
        legs = (self.take_profit is not None) + (self.stop_loss is not None)
        wanted = {"simple": "neither take_profit nor stop_loss", "bracket": "both take_profit and stop_loss",
                  "oto": "exactly one of take_profit and stop_loss"}  # fmt: skip
        fits = {"simple": legs == 0, "bracket": legs == 2, "oto": legs == 1}
        if self.order_class is not None and not fits[self.order_class]:
            raise ValueError(f"a {self.order_class} order has {wanted[self.order_class]}")
        return self


def _leg_price(value: Any, leg: str, price_field: str) -> Any:
    """A bracket leg's price, given as a price or as Alpaca's object ``{"limit_price": ...}`` /
    ``{"stop_price": ...}``; a stop-loss with a limit (a stop-limit exit) is not offered."""
    if not isinstance(value, dict):
        return value
    if set(value) != {price_field}:
        raise ValueError(f'{leg} is a price, or {{"{price_field}": price}}; got the fields {", ".join(sorted(value))}')
    return value[price_field]


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Amount
    limit_price: Amount | None
    stop_price: Amount | None
    status: str
    reason: str | None
    client_order_id: str | None
    parent_id: int | None
    leg: str
    source: str
    filled_quantity: Amount
    filled_avg_price: Amount | None = Field(description="The execution price once filled.")
    commission: Amount
    total: Amount = Field(description="The change of cash: negative for a buy (cost with commission).")
    created_at: datetime
    updated_at: datetime
    filled_at: datetime | None
    expires_at: datetime | None


class OrderEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    status: str
    reason: str | None


class OrderDetail(OrderRead):
    events: list[OrderEventRead]
    legs: list[OrderRead]


class Tick(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: Positive
    at: datetime | None = Field(default=None, description="When the price was seen (UTC); now when omitted.")


class PriceRead(BaseModel):
    symbol: str
    price: Amount
    source: str
    at: datetime
    orders_filled: int = 0


class PositionRead(BaseModel):
    symbol: str
    quantity: Amount
    avg_cost: Amount
    price: Amount | None
    market_value: Amount
    unrealized_pnl: Amount
    realized_pnl: Amount
    day_change: Amount


class PortfolioRead(BaseModel):
    account_id: int
    name: str
    currency: str
    cash: Amount
    market_value: Amount
    equity: Amount = Field(description="cash + market value")
    day_change: Amount = Field(description="Change of the positions' value since the last close before today (UTC).")
    realized_pnl: Amount
    unrealized_pnl: Amount
    positions: list[PositionRead]


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    asset_class: Literal["stock", "crypto", "fx", "commodity", "index"] | None = None
    currency: str = Field(default="USD", min_length=3, max_length=10)
    fractional: bool | None = None
    price: Positive | None = Field(default=None, description="An admin price to start from.")


class AssetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, min_length=1, max_length=32, description="Rename.")
    name: str | None = Field(default=None, max_length=200)
    fractional: bool | None = None
    price: Positive | None = Field(default=None, description="Reprice: sets the last price.")


class AssetRead(BaseModel):
    id: int
    symbol: str
    name: str | None
    asset_class: str | None
    currency: str
    fractional: bool
    price: Amount | None
    price_source: str | None
    price_at: datetime | None


OrderStatusFilter = Literal["open", "closed", "all", "new", "accepted", "filled", "canceled", "expired", "rejected"]
