"""Bodies of the provider fetch endpoints."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.market.schemas import IngestResult, Symbol


class AlphaVantageFetch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    outputsize: Literal["auto", "compact", "full"] = Field(
        default="auto",
        description="compact = latest 100 trading days; full = all history (premium). auto asks "
        "compact unless start or the stored data needs more, and falls back to compact if full is refused.",
    )
    start: date | None = Field(default=None, description="Keep bars from this date on (inclusive).")
    end: date | None = Field(default=None, description="Keep bars up to this date (inclusive).")


class CoinGeckoFetch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol = Field(description="Instrument symbol to store under, e.g. BTCUSD.")
    coin_id: str | None = Field(
        default=None, pattern=r"^[a-z0-9\-]{1,80}$", description="CoinGecko coin id; guessed for common coins."
    )
    vs_currency: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{3,5}$", description="Quote currency; from the symbol, else usd."
    )
    interval: Literal["1d", "4h", "1h"] = "1d"
    days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="History to fetch; by default only what is missing since the last stored bar "
        "(365 days for a new 1d series, 30 for 4h, 2 for 1h).",
    )


class FetchResult(IngestResult):
    provider: str


class ProviderInfo(BaseModel):
    name: str
    label: str
    configured: bool = Field(description="Whether an API key is set (CoinGecko also works without one).")
    intervals: list[str]
