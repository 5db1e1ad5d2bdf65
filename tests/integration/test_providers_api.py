"""Provider fetches through the API, against the recorded provider bodies (respx, no network)."""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from quantdesk.core.clock import set_clock
from tests.conftest import FIXTURES

PROVIDERS = FIXTURES / "providers"
AV_URL = "https://www.alphavantage.co/query"
CG = "https://api.coingecko.com/api/v3"
KEY = "TESTKEY123"


def recorded(name: str) -> Any:
    return json.loads((PROVIDERS / name).read_text())


@pytest.fixture(autouse=True)
def fixed_clock():
    set_clock(lambda: datetime(2024, 4, 2, 12, tzinfo=UTC))
    yield
    set_clock(None)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record back-off waits instead of sleeping through them."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("quantdesk.market.providers.http.back_off", record)
    return waits


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


async def test_alphavantage_daily_series_is_stored(client: httpx.AsyncClient, mock: respx.MockRouter):
    route = mock.get(AV_URL).respond(200, json=recorded("alphavantage_time_series_daily.json"))
    response = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["provider"], body["interval"], body["inserted"]) == ("alphavantage", "1d", 3)
    assert (body["first"], body["last"]) == ("2021-02-11T00:00:00Z", "2021-02-16T00:00:00Z")
    params = route.calls.last.request.url.params
    assert params["function"] == "TIME_SERIES_DAILY"
    assert params["symbol"] == "PKG"
    assert params["apikey"] == KEY
    assert params["outputsize"] == "compact"  # a new series: full is premium on free keys
    assert any("outputsize=full" in note for note in body["notes"])
    bars = (await client.get("/api/v1/instruments/PKG/bars")).json()["bars"]
    assert bars[0] == {
        "timestamp": "2021-02-11T00:00:00Z",
        "open": 133.99,
        "high": 134.49,
        "low": 130.37,
        "close": 131.17,
        "volume": 768588.0,
    }
    instrument = (await client.get("/api/v1/instruments/PKG")).json()
    assert instrument["asset_class"] == "stock"


async def test_alphavantage_refetch_asks_compact_and_stores_only_new_bars(
    client: httpx.AsyncClient, mock: respx.MockRouter
):
    set_clock(lambda: datetime(2021, 2, 17, 12, tzinfo=UTC))
    body = recorded("alphavantage_time_series_daily.json")
    route = mock.get(AV_URL).respond(200, json=body)
    await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    body["Time Series (Daily)"]["2021-02-17"] = {
        "1. open": "133.0",
        "2. high": "134.0",
        "3. low": "132.0",
        "4. close": "133.5",
        "5. volume": "500000",
    }
    route.respond(200, json=body)
    again = (await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})).json()
    assert route.calls.last.request.url.params["outputsize"] == "compact"
    assert (again["received"], again["inserted"], again["unchanged"]) == (2, 1, 1)


async def test_alphavantage_full_refused_as_premium_falls_back_to_compact(
    client: httpx.AsyncClient, mock: respx.MockRouter
):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["outputsize"] == "full":
            return httpx.Response(200, json=recorded("alphavantage_information_premium_outputsize.json"))
        return httpx.Response(200, json=recorded("alphavantage_time_series_daily.json"))

    mock.get(AV_URL).mock(side_effect=answer)
    body = (
        await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG", "start": "2000-01-01"})
    ).json()
    assert body["inserted"] == 3
    assert any("premium" in note for note in body["notes"])


@pytest.mark.parametrize(
    ("fixture", "status", "error", "phrase"),
    [
        ("alphavantage_note_rate_limit_legacy.json", 429, "provider_rate_limited", "frequency limit"),
        ("alphavantage_information_daily_limit.json", 429, "provider_rate_limited", "daily request limit"),
        ("alphavantage_information_daily_limit_key_echoed.json", 429, "provider_rate_limited", "daily request limit"),
        ("alphavantage_information_burst_limit.json", 429, "provider_rate_limited", "burst limit"),
        ("alphavantage_information_premium_outputsize.json", 422, "provider_rejected", "premium"),
        ("alphavantage_information_demo_key.json", 422, "provider_rejected", "demo"),
        ("alphavantage_error_invalid_call.json", 404, "provider_not_found", "no daily series for 'PKG'"),
        ("alphavantage_error_apikey.json", 422, "provider_rejected", "rejected the API key"),
    ],
)
async def test_alphavantage_refusals_in_http_200_become_clear_errors(
    client: httpx.AsyncClient, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, fixture, status, error, phrase
):
    caplog.set_level(logging.DEBUG)
    mock.get(AV_URL).respond(200, json=recorded(fixture))
    response = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG", "outputsize": "full"})
    assert response.status_code == status
    assert response.json()["error"] == error
    assert phrase in response.json()["detail"]
    assert "ABC123" not in response.text
    assert KEY not in response.text
    assert KEY not in caplog.text
    assert "ABC123" not in caplog.text
    assert (await client.get("/api/v1/instruments/PKG")).status_code == 404  # nothing half-stored


async def test_rate_limits_say_when_to_retry(client: httpx.AsyncClient, mock: respx.MockRouter):
    mock.get(AV_URL).respond(200, json=recorded("alphavantage_information_daily_limit.json"))
    response = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert response.headers["retry-after"] == str(12 * 3600)
    assert response.json()["retryable"] is True


async def test_burst_limit_is_retried_then_succeeds(client: httpx.AsyncClient, mock: respx.MockRouter, sleeps):
    mock.get(AV_URL).mock(
        side_effect=[
            httpx.Response(200, json=recorded("alphavantage_information_burst_limit.json")),
            httpx.Response(200, json=recorded("alphavantage_time_series_daily.json")),
        ]
    )
    response = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert response.status_code == 200
    assert sleeps == [1.5]


async def test_html_outage_page_and_timeouts_are_provider_unavailable(
    client: httpx.AsyncClient, mock: respx.MockRouter
):
    mock.get(AV_URL).respond(503, text="<html>Application Error</html>", headers={"content-type": "text/html"})
    outage = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert outage.status_code == 424
    assert outage.json()["error"] == "provider_unavailable"
    mock.get(AV_URL).respond(200, text="<html>Application Error</html>", headers={"content-type": "text/html"})
    html = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert html.status_code == 424
    assert "not JSON" in html.json()["detail"]
    route = mock.get(AV_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    calls_before = route.call_count
    timeout = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert timeout.status_code == 424
    assert "did not answer within" in timeout.json()["detail"]
    assert route.call_count - calls_before == 3  # the first try and provider_max_retries=2 retries
    mock.get(AV_URL).mock(side_effect=httpx.ConnectError("refused"))
    unreachable = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert unreachable.status_code == 424
    assert "could not reach" in unreachable.json()["detail"]


async def test_alphavantage_without_a_key_says_how_to_set_one(client: httpx.AsyncClient, settings):
    settings.alphavantage_api_key = None
    response = await client.post("/api/v1/providers/alphavantage/fetch", json={"symbol": "PKG"})
    assert response.status_code == 422
    assert "QUANTDESK_ALPHAVANTAGE_API_KEY" in response.json()["detail"]


async def test_coingecko_market_chart_builds_complete_days_only(client: httpx.AsyncClient, mock: respx.MockRouter):
    route = mock.get(f"{CG}/coins/bitcoin/market_chart").respond(200, json=recorded("coingecko_market_chart.json"))
    response = await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "BTCUSD"})
    assert response.status_code == 200, response.text
    params = route.calls.last.request.url.params
    assert (params["vs_currency"], params["days"], params["interval"]) == ("usd", "365", "daily")
    bars = (await client.get("/api/v1/instruments/BTCUSD/bars")).json()["bars"]
    # three samples: 03-31 00:00, 04-01 00:00 and the 'now' point; only 03-31 has both midnights
    assert bars == [
        {
            "timestamp": "2024-03-31T00:00:00Z",
            "open": 69702.3087473573,
            "high": 71246.9514406015,
            "low": 69702.3087473573,
            "close": 71246.9514406015,
            "volume": 19723005998.215,
        }
    ]
    instrument = (await client.get("/api/v1/instruments/BTCUSD")).json()
    assert (instrument["asset_class"], instrument["currency"]) == ("crypto", "USD")


async def test_coingecko_ohlc_close_times_become_open_times(client: httpx.AsyncClient, mock: respx.MockRouter):
    mock.get(f"{CG}/coins/bitcoin/ohlc").respond(200, json=recorded("coingecko_ohlc.json"))
    response = await client.post(
        "/api/v1/providers/coingecko/fetch", json={"symbol": "BTC-USD", "interval": "4h", "days": 7}
    )
    assert response.status_code == 200, response.text
    bars = (await client.get("/api/v1/instruments/BTC-USD/bars")).json()["bars"]
    assert [b["timestamp"] for b in bars] == ["2024-03-02T12:00:00Z", "2024-03-02T16:00:00Z", "2024-03-02T20:00:00Z"]
    assert bars[0]["open"] == 61942
    assert bars[0]["volume"] == 0


async def test_coingecko_asks_only_for_missing_days(client: httpx.AsyncClient, mock: respx.MockRouter):
    route = mock.get(f"{CG}/coins/bitcoin/market_chart").respond(200, json=recorded("coingecko_market_chart.json"))
    await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "BTCUSD"})
    await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "BTCUSD"})
    assert route.calls.last.request.url.params["days"] == "4"  # 2024-03-31 stored, now is 2024-04-02 12:00


async def test_coingecko_429_backs_off_then_succeeds(client: httpx.AsyncClient, mock: respx.MockRouter, sleeps):
    mock.get(f"{CG}/coins/bitcoin/market_chart").mock(
        side_effect=[
            httpx.Response(429, json=recorded("coingecko_error_429_rate_limit.json"), headers={"retry-after": "2"}),
            httpx.Response(429, text="<html>slow down</html>"),
            httpx.Response(200, json=recorded("coingecko_market_chart.json")),
        ]
    )
    response = await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "BTCUSD"})
    assert response.status_code == 200
    assert sleeps == [2.0, 0.0]  # Retry-After honoured, then the (test-zeroed) back-off


@pytest.mark.parametrize(
    ("status", "fixture", "expected_status", "phrase"),
    [
        (429, "coingecko_error_429_rate_limit.json", 429, "rate limit"),
        (404, "coingecko_error_404_coin_not_found.json", 404, "has no coin 'bitcoin'"),
        (401, "coingecko_error_401_10012_time_range.json", 422, "past 365 days"),
    ],
)
async def test_coingecko_errors(
    client: httpx.AsyncClient, mock: respx.MockRouter, status, fixture, expected_status, phrase
):
    mock.get(f"{CG}/coins/bitcoin/market_chart").respond(status, json=recorded(fixture))
    response = await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "BTCUSD", "days": 400})
    assert response.status_code == expected_status
    assert phrase in response.json()["detail"]
    assert (await client.get("/api/v1/instruments/BTCUSD")).status_code == 404


async def test_coingecko_unknown_coin_symbol_asks_for_coin_id(client: httpx.AsyncClient):
    response = await client.post("/api/v1/providers/coingecko/fetch", json={"symbol": "ZZZUSD"})
    assert response.status_code == 422
    assert "pass coin_id" in response.json()["detail"]


async def test_unknown_provider_and_provider_list(client: httpx.AsyncClient):
    missing = await client.post("/api/v1/providers/yahoo/fetch", json={})
    assert missing.status_code == 404
    assert "alphavantage, coingecko" in missing.json()["detail"]
    listed = (await client.get("/api/v1/providers")).json()
    assert {p["name"]: p["configured"] for p in listed} == {"alphavantage": True, "coingecko": False}


def test_recorded_bodies_are_the_shared_ones():
    shared = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "providers"
    if not shared.is_dir():
        pytest.skip("../shared is not beside this checkout")
    for path in shared.glob("*.json"):
        assert (PROVIDERS / path.name).read_bytes() == path.read_bytes(), path.name
