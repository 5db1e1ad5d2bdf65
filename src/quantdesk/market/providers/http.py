"""The HTTP loop every provider client shares: timeouts, retries with back-off, readable errors."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx

from quantdesk.core.config import Settings
from quantdesk.core.errors import ProviderError

logger = logging.getLogger("quantdesk.providers")
# The back-off wait under one name, so that tests record the waits instead of sleeping through them.
back_off = anyio.sleep
# httpx logs each request URL at INFO and Alpha Vantage's key rides in the query string: whatever
# level the application configures, these loggers must never print a URL.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)
T = TypeVar("T")
# Waiting longer than this inside one API request helps nobody: report the limit instead.
MAX_INLINE_WAIT_S = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        return cls(settings.provider_max_retries, settings.provider_backoff_s, settings.provider_timeout_s)

    def delay(self, attempt: int, error: ProviderError) -> float:
        exponential = self.backoff_s * (2**attempt)
        return float(max(exponential, error.retry_after_s or 0.0))


def response_json(response: httpx.Response) -> Any | None:
    """The decoded JSON body, or None when the body is not JSON (an HTML outage page, say)."""
    try:
        return response.json()
    except ValueError:
        return None


async def fetch_with_retries(
    provider: str,
    policy: RetryPolicy,
    send: Callable[[httpx.AsyncClient], Any],
    interpret: Callable[[httpx.Response], T],
) -> T:
    """Send, interpret, and retry what ``interpret`` marks retryable, up to ``policy.retries`` times."""
    async with httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=True) as client:
        attempt = 0
        while True:
            try:
                return interpret(await send(client))
            except httpx.TimeoutException:
                error = ProviderError(
                    f"{provider} did not answer within {policy.timeout_s:g} s; try again later",
                    provider=provider,
                )
            except httpx.TransportError as exc:
                error = ProviderError(
                    f"could not reach {provider} ({type(exc).__name__}); check the network and try again",
                    provider=provider,
                )
            except ProviderError as exc:
                error = exc
            wait = policy.delay(attempt, error)
            if not error.retryable or attempt >= policy.retries or wait > MAX_INLINE_WAIT_S:
                raise error
            logger.info("%s: %s; retry %d in %.1f s", provider, error.code, attempt + 1, wait)
            await back_off(wait)
            attempt += 1
