"""Alpha Vantage ``TIME_SERIES_DAILY``.

Alpha Vantage answers refusals with HTTP 200 and a ``Note``, ``Information`` or ``Error Message``
key instead of data; ``Information`` alone means four different things (burst limit, daily cap,
premium-only parameter, demo key), told apart by its text. Its key travels in the query string
and is sometimes echoed back in those messages, so every message is scrubbed before it is shown.
"""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import httpx
import numpy as np

from quantdesk.core.clock import utcnow
from quantdesk.core.errors import ProviderError, ProviderNotFound, ProviderRateLimited, ProviderRejected
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import DAY_US, Interval
from quantdesk.market.models import AssetClass
from quantdesk.market.providers.base import ProviderBars, StoredRange
from quantdesk.market.providers.http import RetryPolicy, fetch_with_retries, response_json
from quantdesk.market.schemas import InstrumentCreate

NAME = "alphavantage"
LABEL = "Alpha Vantage"
SERIES_KEY = "Time Series (Daily)"
FIELDS = ("1. open", "2. high", "3. low", "4. close", "5. volume")
# compact returns the latest 100 trading days; about 140 calendar days with weekends and holidays.
COMPACT_REACH = timedelta(days=140)
OutputSize = Literal["auto", "compact", "full"]


def scrub(message: str, api_key: str | None) -> str:
    """Remove the API key from a provider message before it is logged or shown."""
    cleaned = re.sub(r"(API key as )\S+", r"\1***", message)
    if api_key:
        cleaned = cleaned.replace(api_key, "***")
    return cleaned


def _seconds_to_utc_midnight() -> float:
    now = utcnow()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (tomorrow - now).total_seconds()


def classify_information(message: str) -> ProviderError:
    """Map an ``Information`` message to the error it means (the key is already scrubbed)."""
    lowered = message.lower()
    # Premium and demo first: their texts mention endpoints such as TIME_SERIES_DAILY.
    if "outputsize=full" in lowered:
        return ProviderRejected(
            f"{LABEL}: outputsize=full is a premium feature on this key; use outputsize=compact "
            "(the latest 100 trading days) or a premium key",
            provider=NAME,
        )
    if "demo" in lowered:
        return ProviderRejected(
            f"{LABEL}'s 'demo' key only serves its sample symbols; set QUANTDESK_ALPHAVANTAGE_API_KEY "
            "to your own free key",
            provider=NAME,
        )
    if "per second" in lowered or "spreading out" in lowered:
        return ProviderRateLimited(
            f"{LABEL} burst limit (1 request per second) hit; retry in a moment",
            provider=NAME,
            retry_after_s=1.5,
        )
    if "per day" in lowered or "daily rate limit" in lowered:
        return ProviderRateLimited(
            f"{LABEL} daily request limit reached; retry after the limit resets (about 00:00 UTC) "
            "or use a premium key. Provider said: " + message,
            provider=NAME,
            retry_after_s=_seconds_to_utc_midnight(),
        )
    return ProviderRejected(f"{LABEL} refused the request: {message}", provider=NAME)


def interpret(response: httpx.Response, api_key: str | None, symbol: str) -> dict[str, Any]:
    """The daily series of a response, or the ProviderError its body or status means."""
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderError(f"{LABEL} answered HTTP {response.status_code}; try again later", provider=NAME)
    if response.status_code >= 400:
        raise ProviderRejected(f"{LABEL} answered HTTP {response.status_code}", provider=NAME)
    body = response_json(response)
    if not isinstance(body, dict):
        raise ProviderError(
            f"{LABEL} answered with a body that is not JSON ({response.headers.get('content-type', 'no type')}); "
            "the service is probably having an outage, try again later",
            provider=NAME,
        )
    if "Note" in body:
        raise ProviderRateLimited(
            f"{LABEL} call frequency limit reached; retry in a minute. Provider said: "
            + scrub(str(body["Note"]), api_key),
            provider=NAME,
            retry_after_s=60.0,
        )
    if "Information" in body:
        raise classify_information(scrub(str(body["Information"]), api_key))
    if "Error Message" in body:
        message = scrub(str(body["Error Message"]), api_key)
        if "apikey" in message.lower():
            raise ProviderRejected(
                f"{LABEL} rejected the API key; set QUANTDESK_ALPHAVANTAGE_API_KEY to a valid key",
                provider=NAME,
            )
        raise ProviderNotFound(
            f"{LABEL} has no daily series for '{symbol}' (it answered: {message}); check the symbol, "
            "e.g. IBM or TSCO.LON",
            provider=NAME,
        )
    series = body.get(SERIES_KEY)
    if not isinstance(series, dict):
        raise ProviderError(
            f"{LABEL} answered without '{SERIES_KEY}' (keys: {', '.join(map(str, body))})",
            provider=NAME,
            retryable=False,
        )
    return series


def parse_series(series: dict[str, Any]) -> BarArrays:
    """Bars from the date -> values mapping; dates become 00:00 UTC of that trading day."""
    try:
        days = sorted(series)
        ts = [(date.fromisoformat(d).toordinal() - date(1970, 1, 1).toordinal()) * DAY_US for d in days]
        values = np.array([[float(series[d][f]) for f in FIELDS] for d in days], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(
            f"{LABEL} sent a daily series in an unexpected shape ({exc})", provider=NAME, retryable=False
        ) from None
    values = values.reshape(-1, len(FIELDS))
    return BarArrays.from_columns(
        ts=ts, open=values[:, 0], high=values[:, 1], low=values[:, 2], close=values[:, 3], volume=values[:, 4]
    )


def choose_output_size(
    requested: OutputSize, stored: StoredRange, start: datetime | None
) -> Literal["compact", "full"]:
    """compact unless what is asked for, or missing, reaches further back than compact serves.

    A new series without a start gets compact: full is premium on free keys, and a refused request
    still counts against their 25 a day.
    """
    if requested != "auto":
        return requested
    horizon = utcnow() - COMPACT_REACH
    if start is not None:
        return "compact" if start >= horizon else "full"
    return "full" if stored.last is not None and stored.last < horizon else "compact"


async def fetch_daily(
    symbol: str,
    *,
    api_key: str | None,
    base_url: str,
    policy: RetryPolicy,
    stored: StoredRange,
    start: datetime | None = None,
    output_size: OutputSize = "auto",
) -> ProviderBars:
    if not api_key:
        raise ProviderRejected(
            f"no {LABEL} key configured; set QUANTDESK_ALPHAVANTAGE_API_KEY (a free key takes 20 seconds)",
            provider=NAME,
        )
    size = choose_output_size(output_size, stored, start)
    notes: list[str] = []

    async def request(size: str) -> dict[str, Any]:
        params = {"function": "TIME_SERIES_DAILY", "symbol": symbol, "outputsize": size, "apikey": api_key}
        return await fetch_with_retries(
            LABEL,
            policy,
            lambda client: client.get(base_url, params=params),
            lambda response: interpret(response, api_key, symbol),
        )

    try:
        series = await request(size)
    except ProviderRejected as exc:
        if output_size != "auto" or size != "full" or "premium" not in exc.detail:
            raise
        notes.append("full history is a premium Alpha Vantage feature on this key; fetched the latest 100 days")
        series = await request("compact")
        size = "compact"
    notes.append(f"outputsize={size}")
    if size == "compact" and stored.last is None and start is None:
        notes.append("compact covers the latest 100 trading days; ask outputsize=full (premium) for all history")
    return ProviderBars(
        bars=parse_series(series),
        interval=Interval.d1,
        instrument=InstrumentCreate(symbol=symbol, asset_class=AssetClass.stock, currency="USD"),
        notes=notes,
    )
