"""Bodies of the user, key and account endpoints. Money travels as decimal strings."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.core.money import PLACES, Amount, Positive


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=40)
    display_name: str | None = Field(default=None, max_length=80)
    role: Literal["admin", "trader"] = "trader"


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=80)
    disabled: bool | None = Field(default=None, description="Admins only: a disabled user's keys stop working.")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


class UserCreated(UserRead):
    api_key: str = Field(description="Shown once: only its hash is stored.")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=80)


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    api_key: str = Field(description="Shown once: only its hash is stored.")


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    currency: str = Field(default="USD", min_length=3, max_length=10, pattern=r"^[A-Za-z]{3,10}$")
    initial_deposit: Decimal = Field(ge=0, max_digits=20, decimal_places=PLACES, allow_inf_nan=False)
    allow_short: bool = False


class AmountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Positive


class AccountRead(BaseModel):
    id: int
    user_id: int
    username: str
    name: str
    currency: str
    cash: Amount
    equity: Amount = Field(description="cash + the market value of the positions")
    initial_deposit: Amount
    allow_short: bool
    generation: int = Field(description="How many times the account was reset.")
    created_at: datetime
    reset_at: datetime | None


class LedgerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    amount: Amount
    balance: Amount
    equity_before: Amount | None = Field(
        default=None, description="Cash flows: the account's equity just before (time-weighted returns use it)."
    )
    generation: int
    order_id: int | None
    note: str
