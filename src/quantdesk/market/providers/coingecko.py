"""CoinGecko ``/coins/{id}/market_chart`` (daily bars) and ``/coins/{id}/ohlc`` (4h and 1h bars).

CoinGecko reports errors with real status codes but three body shapes; a 401 with error code
10012 means "beyond the 365 days of the public API", not a bad key. OHLC timestamps are candle
*close* times; quantdesk stores bar *open* times. ``market_chart`` gives price samples, from which
a day's bar is built only when both of its midnights were sampled, so the trailing "now" point
never passes for a complete day.
"""

from dataclasses import dataclass
from typing import Any, Literal

import httpx
import numpy as np
from numpy.typing import NDArray

from quantdesk.core.config import Settings
from quantdesk.core.errors import ProviderError, ProviderNotFound, ProviderRateLimited, ProviderRejected
from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import DAY_US, Interval
from quantdesk.market.models import AssetClass
from quantdesk.market.providers.base import ProviderBars
from quantdesk.market.providers.http import RetryPolicy, fetch_with_retries, response_json
from quantdesk.market.schemas import InstrumentCreate

NAME = "coingecko"
LABEL = "CoinGecko"
PUBLIC_ROOT = "https://api.coingecko.com/api/v3"
PRO_ROOT = "https://pro-api.coingecko.com/api/v3"
PUBLIC_MAX_DAYS = 365
OHLC_DAYS = (1, 7, 14, 30, 90, 180, 365)
HOUR_US = 3_600_000_000
HALF_HOUR_US = HOUR_US // 2
KNOWN_COINS = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "SOL": "solana",
    "XRP": "ripple",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "BNB": "binancecoin",
    "LTC": "litecoin",
    "DOT": "polkadot",
    "AVAX": "avalanche-2",
    "LINK": "chainlink",
    "TRX": "tron",
    "XLM": "stellar",
    "BCH": "bitcoin-cash",
}
QUOTE_CURRENCIES = ("USDT", "USDC", "USD", "EUR", "GBP", "JPY", "BTC", "ETH")
CoinInterval = Literal["1d", "4h", "1h"]


@dataclass(frozen=True)
class CoinRef:
    coin_id: str
    vs_currency: str


def resolve_coin(symbol: str, coin_id: str | None, vs_currency: str | None) -> CoinRef:
    """The CoinGecko coin and quote currency for an instrument symbol such as BTCUSD or ETH-EUR."""
    compact = symbol.upper().replace("-", "").replace("_", "").replace("/", "")
    quote = next((q for q in QUOTE_CURRENCIES if compact.endswith(q) and len(compact) > len(q)), None)
    base = compact[: -len(quote)] if quote else compact
    vs = (vs_currency or (quote if quote not in (None, "USDT", "USDC") else "USD") or "USD").lower()
    coin = coin_id or KNOWN_COINS.get(base)
    if coin is None:
        raise ProviderRejected(
            f"cannot tell which CoinGecko coin '{symbol}' is; pass coin_id (e.g. 'bitcoin', as listed "
            "by CoinGecko's /coins/list)",
            provider=NAME,
        )
    return CoinRef(coin.lower(), vs)


def error_message(body: Any) -> tuple[int | None, str]:
    """Error code and message from any of CoinGecko's three error shapes."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, str):
            return None, inner
        status = inner.get("status", inner) if isinstance(inner, dict) else {}
        if isinstance(status, dict):
            code = status.get("error_code")
            return (
                int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
                str(status.get("error_message", "")).strip(),
            )
    return None, ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def interpret(response: httpx.Response, coin: str) -> Any:
    body = response_json(response)
    status = response.status_code
    if status == 200 and body is not None:
        return body
    code, message = error_message(body)
    said = f" ({message})" if message else ""
    if status == 429:
        raise ProviderRateLimited(
            f"{LABEL} rate limit reached{said}; retry in a minute or use an API key",
            provider=NAME,
            retry_after_s=_retry_after(response),
        )
    if status == 404:
        raise ProviderNotFound(
            f"{LABEL} has no coin '{coin}'; use the coin id from CoinGecko's /coins/list, e.g. 'bitcoin'",
            provider=NAME,
        )
    if code == 10012:
        raise ProviderRejected(
            f"{LABEL}'s public API serves only the past {PUBLIC_MAX_DAYS} days; ask for fewer days "
            "or configure a paid key (QUANTDESK_COINGECKO_API_KEY, QUANTDESK_COINGECKO_PRO=true)",
            provider=NAME,
        )
    if status in (401, 403):
        raise ProviderRejected(
            f"{LABEL} refused the request (HTTP {status}{said}); check QUANTDESK_COINGECKO_API_KEY and plan",
            provider=NAME,
        )
    if status >= 500 or body is None:
        raise ProviderError(f"{LABEL} answered HTTP {status} without data; try again later", provider=NAME)
    raise ProviderRejected(f"{LABEL} refused the request (HTTP {status}{said})", provider=NAME)


def bars_from_market_chart(body: Any) -> BarArrays:
    """Daily bars from price samples: open at a midnight, close at the next, high/low in between."""
    try:
        prices = np.asarray(body["prices"], dtype=np.float64).reshape(-1, 2)
        volumes = np.asarray(body.get("total_volumes") or [], dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(
            f"{LABEL} market_chart body has an unexpected shape ({exc})", provider=NAME, retryable=False
        ) from None
    if prices.shape[0] < 2:
        return BarArrays.empty()
    ts = (prices[:, 0] * 1000).astype(np.int64)
    price = prices[:, 1]
    volume_by_ts = dict(zip((volumes[:, 0] * 1000).astype(np.int64).tolist(), volumes[:, 1].tolist(), strict=True))
    step = int(np.median(np.diff(ts)))
    rows: list[tuple[int, float, float, float, float, float]] = []
    first_day = -(-int(ts[0]) // DAY_US) * DAY_US  # first midnight at or after the first sample
    for day in range(first_day, int(ts[-1]) - DAY_US + 1, DAY_US):
        bar = _day_bar(ts, price, day, step)
        if bar is not None:
            open_, high, low, close, closing_ts = bar
            rows.append((day, open_, high, low, close, volume_by_ts.get(closing_ts, 0.0)))
    if not rows:
        return BarArrays.empty()
    columns = list(zip(*rows, strict=True))
    return BarArrays.from_columns(
        ts=columns[0], open=columns[1], high=columns[2], low=columns[3], close=columns[4], volume=columns[5]
    )


def _day_bar(
    ts: NDArray[np.int64], price: NDArray[np.float64], day: int, step: int
) -> tuple[float, float, float, float, int] | None:
    """(open, high, low, close, closing sample ts) for ``day``, if samples cover both its midnights."""
    opening = int(np.searchsorted(ts, day))
    closing = int(np.searchsorted(ts, day + DAY_US))
    if opening >= ts.size or closing >= ts.size:
        return None
    tolerance = min(step, HOUR_US)
    if ts[opening] - day > tolerance or ts[closing] - (day + DAY_US) > tolerance:
        return None
    window = price[opening : closing + 1]
    return float(window[0]), float(window.max()), float(window.min()), float(window[-1]), int(ts[closing])


def bars_from_ohlc(body: Any) -> tuple[BarArrays, Interval]:
    """Bars from ``[close_ms, o, h, l, c]`` rows; 30-minute candles are paired into exact 1h bars."""
    try:
        rows = np.asarray(body, dtype=np.float64).reshape(-1, 5)
    except (TypeError, ValueError) as exc:
        raise ProviderError(
            f"{LABEL} ohlc body has an unexpected shape ({exc})", provider=NAME, retryable=False
        ) from None
    if rows.shape[0] < 2:
        raise ProviderError(
            f"{LABEL} returned fewer than two candles; ask for more days", provider=NAME, retryable=False
        )
    close_ts = (rows[:, 0] * 1000).astype(np.int64)
    spacing = np.unique(np.diff(close_ts), return_counts=True)
    candle = int(spacing[0][np.argmax(spacing[1])])
    open_ts = close_ts - candle
    bars = BarArrays.from_columns(
        ts=open_ts, open=rows[:, 1], high=rows[:, 2], low=rows[:, 3], close=rows[:, 4], volume=np.zeros(len(rows))
    )
    if candle == 4 * HOUR_US:
        return bars, Interval.h4
    if candle == HALF_HOUR_US:
        return _pair_half_hours(bars), Interval.h1
    raise ProviderRejected(
        f"{LABEL} returned {candle / HOUR_US:g}-hour candles, which match no quantdesk interval; "
        "use interval=1d (built from market_chart), or days<=30 for 4h and days<=2 for 1h",
        provider=NAME,
    )


def _pair_half_hours(bars: BarArrays) -> BarArrays:
    starts = bars.ts[bars.ts % HOUR_US == 0]
    position = {int(t): i for i, t in enumerate(bars.ts.tolist())}
    pairs = [(position[int(s)], position[int(s) + HALF_HOUR_US]) for s in starts if int(s) + HALF_HOUR_US in position]
    if not pairs:
        return BarArrays.empty()
    first, second = (np.array(side) for side in zip(*pairs, strict=True))
    return BarArrays.from_columns(
        ts=bars.ts[first],
        open=bars.open[first],
        high=np.maximum(bars.high[first], bars.high[second]),
        low=np.minimum(bars.low[first], bars.low[second]),
        close=bars.close[second],
        volume=np.zeros(first.size),
    )


def api_root(settings: Settings) -> tuple[str, dict[str, str]]:
    key = settings.coingecko_api_key.get_secret_value() if settings.coingecko_api_key else None
    root = settings.coingecko_base_url or (PRO_ROOT if settings.coingecko_pro else PUBLIC_ROOT)
    if not key:
        return root, {}
    header = "x-cg-pro-api-key" if settings.coingecko_pro else "x-cg-demo-api-key"
    return root, {header: key}


def days_for(interval: CoinInterval, needed_days: int, pro: bool) -> int:
    """The ``days`` to ask for: enough to cover ``needed_days``, within what the endpoint serves."""
    if interval == "1d":
        # One extra day: a day's bar needs the next midnight's sample as its close.
        return needed_days + 1 if pro else min(needed_days + 1, PUBLIC_MAX_DAYS)
    limit = 30 if interval == "4h" else 2
    wanted = min(max(needed_days, 1), limit)
    return next(d for d in OHLC_DAYS if d >= wanted)


async def fetch_bars(
    ref: CoinRef, interval: CoinInterval, days: int, settings: Settings, policy: RetryPolicy, symbol: str
) -> ProviderBars:
    root, headers = api_root(settings)
    notes = [f"coin {ref.coin_id} in {ref.vs_currency}, days={days}"]
    if interval == "1d":
        url = f"{root}/coins/{ref.coin_id}/market_chart"
        params: dict[str, Any] = {"vs_currency": ref.vs_currency, "days": days, "interval": "daily"}
    else:
        url = f"{root}/coins/{ref.coin_id}/ohlc"
        params = {"vs_currency": ref.vs_currency, "days": days}
        notes.append("CoinGecko OHLC carries no volume; volume stored as 0")
    body = await fetch_with_retries(
        LABEL,
        policy,
        lambda client: client.get(url, params=params, headers=headers),
        lambda response: interpret(response, ref.coin_id),
    )
    if interval == "1d":
        bars, got = bars_from_market_chart(body), Interval.d1
    else:
        bars, got = bars_from_ohlc(body)
        if got.value != interval:
            raise ProviderRejected(
                f"{LABEL} returned {got.value} candles for days={days}, not {interval}", provider=NAME
            )
    instrument = InstrumentCreate(
        symbol=symbol,
        name=f"{ref.coin_id} / {ref.vs_currency.upper()}",
        asset_class=AssetClass.crypto,
        currency=ref.vs_currency.upper(),
        exchange="CoinGecko",
    )
    return ProviderBars(bars=bars, interval=got, instrument=instrument, notes=notes)
