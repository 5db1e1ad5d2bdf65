"""/stats and /enriched over stored bars, on both databases."""

import math
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from quantdesk.analytics import indicators
from quantdesk.core.types import to_epoch_us
from quantdesk.market.intervals import Interval
from tests.factories import bars_as_json, make_bars

BARS = make_bars(300, weekdays_only=True)


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME", "asset_class": "stock"})
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(BARS))
    return client


async def test_stats_of_the_close(acme: httpx.AsyncClient):
    body = (await acme.get("/api/v1/instruments/ACME/stats")).json()
    close = BARS.close
    assert body["count"] == 300
    assert body["interval"] == "1d"
    assert body["periods_per_year"] == 252
    assert body["first"] == close[0]
    assert body["last"] == close[-1]
    assert body["mean"] == pytest.approx(close.mean())
    assert body["std"] == pytest.approx(close.std(ddof=1))
    assert body["percent_change"] == pytest.approx((close[-1] / close[0] - 1) * 100)
    assert body["start"] == "2024-01-01T00:00:00Z"


async def test_stats_of_a_crypto_annualise_over_365_days(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "BTC", "asset_class": "crypto"})
    await client.post("/api/v1/instruments/BTC/bars", json=bars_as_json(make_bars(50)))
    assert (await client.get("/api/v1/instruments/BTC/stats")).json()["periods_per_year"] == 365


async def test_stats_over_a_trimmed_and_resampled_range(acme: httpx.AsyncClient):
    body = (await acme.get("/api/v1/instruments/ACME/stats?start=2024-02-01&end=2024-04-30&frequency=month")).json()
    assert (body["count"], body["frequency"], body["periods_per_year"]) == (3, "month", 12)
    assert body["start"] == "2024-02-01T00:00:00Z"


async def test_enriched_table_shape_and_values(acme: httpx.AsyncClient):
    response = await acme.get("/api/v1/instruments/ACME/enriched?indicators=sma:20,rsi:14&window=10")
    body = response.json()
    assert body["columns"][:6] == ["timestamp", "open", "high", "low", "close", "volume"]
    assert {"rolling_mean_10", "volatility_20", "normalized_100", "sma_20", "rsi_14"} <= set(body["columns"])
    rows = body["rows"]
    assert len(rows) == 300
    sma = body["columns"].index("sma_20")
    assert rows[0][sma] is None  # warm-up NaN is null
    expected = indicators.sma(BARS.to_frame()["close"], 20).iloc[-1]
    assert rows[-1][sma] == pytest.approx(expected)


async def test_enriched_as_records_and_csv(acme: httpx.AsyncClient):
    query = "orient=records&end=2024-01-10&window=2&volatility_window=2"
    records = (await acme.get(f"/api/v1/instruments/ACME/enriched?{query}")).json()["records"]
    assert records[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert records[0]["return"] is None
    csv = await acme.get("/api/v1/instruments/ACME/enriched", headers={"accept": "text/csv"})
    lines = csv.text.splitlines()
    assert csv.headers["content-type"].startswith("text/csv")
    assert lines[0].startswith("timestamp,open,high,low,close,volume,return,")
    assert len(lines) == 301
    assert lines[1].split(",")[6] == ""  # the first return is empty, not NaN


async def test_annualised_volatility_column(acme: httpx.AsyncClient):
    body = (await acme.get("/api/v1/instruments/ACME/enriched?volatility_window=5")).json()
    column = body["columns"].index("volatility_5")
    returns = np.diff(BARS.close[-6:]) / BARS.close[-6:-1]
    assert body["rows"][-1][column] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252))


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("window=500", 422, "only 300 bars are available"),
        ("indicators=vwap:20", 422, "valid ones: sma:window"),
        ("start=2030-01-01", 404, "stored 1d bars span 2024-01-01T00:00:00Z to"),
        ("start=2024-03-01&end=2024-02-01", 422, "after end"),
        ("interval=3d", 422, "interval"),
        ("window=0", 422, "window"),
        ("window=1000000", 422, "window"),
        ("frequency=fortnight", 422, "frequency"),
        ("normalize_base=-1", 422, "normalize_base"),
    ],
)
async def test_bad_queries(acme: httpx.AsyncClient, query, status, message):
    response = await acme.get(f"/api/v1/instruments/ACME/enriched?{query}")
    assert response.status_code == status, response.text
    assert message in response.text


async def test_cannot_resample_to_a_finer_frequency(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "W"})
    await client.post("/api/v1/instruments/W/bars", json=bars_as_json(make_bars(30, Interval.w1)))
    response = await client.get("/api/v1/instruments/W/stats?frequency=day")
    assert response.status_code == 422
    assert "finer frequency" in response.json()["detail"]


async def test_unknown_symbol_is_404(client: httpx.AsyncClient):
    assert (await client.get("/api/v1/instruments/NOPE/stats")).status_code == 404


async def test_indicators_at_the_start_of_a_range_use_the_history_before_it(acme: httpx.AsyncClient):
    full = (await acme.get("/api/v1/instruments/ACME/enriched?indicators=sma:20,ema:50,rsi:14")).json()
    trimmed = (
        await acme.get("/api/v1/instruments/ACME/enriched?indicators=sma:20,ema:50,rsi:14&start=2024-06-03")
    ).json()
    columns = trimmed["columns"]
    first = dict(zip(columns, trimmed["rows"][0], strict=True))
    same_day = next(dict(zip(columns, row, strict=True)) for row in full["rows"] if row[0] == first["timestamp"])
    assert first["timestamp"] == "2024-06-03T00:00:00Z"
    assert first["sma_20"] == pytest.approx(same_day["sma_20"])  # windows: exactly the full-history value
    assert first["rolling_mean_20"] == pytest.approx(same_day["rolling_mean_20"])
    assert first["ema_50"] == pytest.approx(same_day["ema_50"], rel=2e-4)  # recursive: converged
    assert first["rsi_14"] == pytest.approx(same_day["rsi_14"], rel=2e-3)
    # path columns start over at the first bar asked for
    assert (first["cumulative_return"], first["normalized_100"], first["drawdown"]) == (0.0, 100.0, 0.0)


async def test_a_resampled_period_straddling_the_start_keeps_only_bars_from_the_start(acme: httpx.AsyncClient):
    body = (
        await acme.get(
            "/api/v1/instruments/ACME/enriched?frequency=month&start=2024-03-15&window=2&volatility_window=2"
        )
    ).json()
    first = dict(zip(body["columns"], body["rows"][0], strict=True))
    march_15 = next(i for i, ts in enumerate(BARS.ts) if ts == to_epoch_us(datetime(2024, 3, 15, tzinfo=UTC)))
    assert first["timestamp"] == "2024-03-01T00:00:00Z"
    assert first["open"] == BARS.open[march_15]
    assert first["rolling_mean_2"] is not None  # February, from the history, fills the window


async def test_an_enriched_table_too_large_to_answer_is_refused(acme: httpx.AsyncClient, settings):
    settings.max_bars_per_page = 100
    response = await acme.get("/api/v1/instruments/ACME/enriched")
    assert response.status_code == 422
    assert "the range holds 300 bars" in response.json()["detail"]
    monthly = await acme.get("/api/v1/instruments/ACME/enriched?frequency=month&window=2&volatility_window=2")
    assert monthly.status_code == 200
