"""Settings from the environment (prefix ``QUANTDESK_``) or a ``.env`` file."""

import ipaddress
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def normalise_database_url(url: str) -> str:
    """Map the URLs people paste (``postgres://``, ``sqlite:///x.db``) to the async drivers we use."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUANTDESK_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./quantdesk.db",
        description="SQLAlchemy URL; sqlite:///path or postgresql://user@host/db are accepted too.",
    )
    # A request beyond the pool opens a connection and closes it when done: under load that churn (a
    # PostgreSQL backend started per few requests) cost more than the requests. Sized for the requests
    # one process serves at once; 4 workers x 20 + their listeners stay under PostgreSQL's default 100.
    db_pool_size: int = Field(
        default=16, ge=1, le=1000, description="PostgreSQL connections each server process keeps open."
    )
    db_max_overflow: int = Field(
        default=4, ge=0, le=1000, description="Extra connections a process may open in a burst (closed after use)."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines for people, JSON lines for a log collector."
    )

    max_upload_mb: float = Field(
        default=20.0, gt=0, description="Largest CSV or JSON body accepted by ingest endpoints."
    )
    max_bars_per_page: int = Field(default=100_000, gt=0)
    max_sweep_cost: int = Field(
        default=2_000_000_000,
        gt=0,
        description="Largest sweep a user may start, in combinations x bars (about 5 minutes of one core).",
    )
    max_forecast_cost: int = Field(
        default=2_000,
        gt=0,
        description="Largest forecast: horizon x the model's weight (gradient_boosting 10, others 1).",
    )
    max_jobs_per_user: int = Field(
        default=2, ge=1, description="Sweeps one user may have queued or running at once; more answer 429."
    )

    trading_days: dict[str, float] = Field(
        default_factory=lambda: {"stock": 252.0, "index": 252.0, "commodity": 252.0, "fx": 260.0, "crypto": 365.0},
        description='Trading days per year by asset class, for annualising (JSON, e.g. {"stock": 250}).',
    )

    open_signup: bool = Field(default=False, description="Anyone may create a trader (POST /api/v1/users).")
    private: bool = Field(default=False, description="Market data and analytics reads need an API key too.")
    commission_pct: Decimal = Field(default=Decimal("0"), ge=0, le=10, description="Paper broker: percent of notional.")
    commission_fixed: Decimal = Field(default=Decimal("0"), ge=0, description="Paper broker: per fill.")
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0, le=1000, description="Paper broker: against the trader.")
    gem_milestones: dict[int, int] = Field(
        default_factory=lambda: {5: 5, 10: 10},
        description='Bonus gems at the Nth filled trade (JSON, e.g. {"5": 5, "10": 10, "50": 25}).',
    )

    signal_quantity: Decimal = Field(
        default=Decimal("1"), gt=0, description="Quantity a signal orders when its message names none."
    )
    signal_max_level_distance_pct: float = Field(
        default=50.0, gt=0, description="A stop-loss or take-profit further from a signal's entry is refused."
    )
    signal_dedupe_window_s: float = Field(
        default=60.0, ge=0, description="The same body on the same webhook within this window is a duplicate."
    )
    webhook_max_body_kb: float = Field(default=64.0, gt=0, description="Largest webhook body accepted.")
    webhook_rate_per_s: float = Field(
        default=5.0, ge=0, description="Sustained signals per second per webhook token (0: no limit)."
    )
    webhook_burst: int = Field(default=20, ge=1, description="Signals a webhook token may send at once.")
    webhook_allowed_ips: list[str] = Field(
        default_factory=list,
        description="Addresses or networks allowed to call webhooks; empty allows all. TradingView's: "
        '["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"].',
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For names the client; empty: the header is ignored.",
    )
    public_url: str | None = Field(
        default=None, description="The server's address as the internet sees it, for webhook URLs."
    )
    websocket_heartbeat_s: float = Field(default=15.0, gt=0, description="Idle time before a socket heartbeat.")
    websocket_queue: int = Field(default=1000, ge=1, description="Events a slow socket may fall behind by.")
    broker_worker: bool = Field(
        default=True, description="Each server process executes waiting signal orders (off: a separate worker)."
    )
    worker_poll_s: float = Field(default=1.0, gt=0, description="Broker worker: longest wait between queue checks.")

    alphavantage_api_key: SecretStr | None = None
    alphavantage_base_url: str = "https://www.alphavantage.co/query"
    coingecko_api_key: SecretStr | None = None
    coingecko_pro: bool = Field(default=False, description="Use the pro API root and header.")
    coingecko_base_url: str | None = None
    provider_timeout_s: float = Field(default=10.0, gt=0)
    provider_max_retries: int = Field(default=3, ge=0, le=10)
    provider_backoff_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles on each retry.")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("webhook_allowed_ips", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # a ValueError names the bad entry
        return value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite URL, else None."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1].split("?", 1)[0]
        if path in ("", ":memory:"):
            return None
        return Path(path)


@lru_cache
def get_settings() -> Settings:
    return Settings()
