"""chart.png: a valid, non-blank PNG of the asked size, the same bytes for the same input."""

import asyncio
import io
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from quantdesk.analytics import charts
from quantdesk.analytics.charts_spec import ChartSpec
from quantdesk.cli.main import app
from quantdesk.market.intervals import Interval
from tests.factories import bars_as_csv, bars_as_json, make_bars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def distinct_colours(data: bytes) -> int:
    pixels = imread(io.BytesIO(data), format="png")
    return len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0))


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME", "asset_class": "stock"})
    await client.post(
        "/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(make_bars(400, weekdays_only=True))
    )
    return client


@pytest.mark.parametrize(
    ("query", "size"),
    [
        ("", (1200, 700)),
        ("?end=2024-04-30&indicators=sma:20,ema:10,bollinger:20:2", (1200, 700)),
        ("?lower=volatility&width=800&height=500", (800, 500)),
        ("?frequency=week", (1200, 700)),
    ],
)
async def test_chart_is_a_non_blank_png_of_the_asked_size(acme: httpx.AsyncClient, query, size):
    response = await acme.get(f"/api/v1/instruments/ACME/chart.png{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert png_size(response.content) == size
    assert distinct_colours(response.content) > 50


async def test_same_input_same_bytes(acme: httpx.AsyncClient):
    first = await acme.get("/api/v1/instruments/ACME/chart.png?indicators=sma:50")
    second = await acme.get("/api/v1/instruments/ACME/chart.png?indicators=sma:50")
    assert first.content == second.content


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("width=100000", 422, "width"),
        ("height=10", 422, "height"),
        ("indicators=rsi:14", 422, "cannot be drawn over prices"),
        ("indicators=sma:1000", 422, "only 400 bars"),
        ("lower=candles", 422, "lower"),
        ("start=2030-01-01", 404, "stored 1d bars span"),
    ],
)
async def test_bad_chart_requests(acme: httpx.AsyncClient, query, status, message):
    response = await acme.get(f"/api/v1/instruments/ACME/chart.png?{query}")
    assert response.status_code == status
    assert message in response.text


def test_chart_command_writes_the_png(use_database: str, engine, tmp_path: Path):
    path = tmp_path / "acme.csv"
    path.write_text(bars_as_csv(make_bars(100)))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--symbol", "ACME"]).exit_code == 0
    out = tmp_path / "acme.png"
    result = runner.invoke(app, ["chart", "ACME", "-o", str(out), "--width", "900", "--height", "600"])
    assert result.exit_code == 0, result.output
    assert png_size(out.read_bytes()) == (900, 600)
    bad = runner.invoke(app, ["chart", "ACME", "-o", str(out), "--lower", "candles"])
    assert bad.exit_code == 1
    assert "returns or volatility" in bad.output


async def test_a_long_fine_range_is_drawn_from_coarser_bars_while_small_charts_go_on(
    acme: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    """12,000 one-minute bars are drawn as 5-minute bars (at most 5,000 points, the title says so), and a
    small chart asked for while that one is still rendering answers first: renders share no lock."""
    await acme.post("/api/v1/instruments", json={"symbol": "BIG", "asset_class": "crypto"})
    stored = await acme.post("/api/v1/instruments/BIG/bars", json=bars_as_json(make_bars(12_000, Interval.m1)))
    assert stored.status_code in (200, 201), stored.text
    big_started, small_answered = threading.Event(), threading.Event()
    drawn: dict[str, tuple[str, int]] = {}
    render = charts.render_chart

    def render_holding_the_big_one(bars: Any, spec: ChartSpec) -> bytes:
        symbol = spec.title.split()[0]
        drawn[symbol] = (spec.title, len(bars) - spec.first_row)
        if symbol == "BIG":
            big_started.set()
            assert small_answered.wait(30), "the small chart never answered while the big one rendered"
        return render(bars, spec)

    monkeypatch.setattr(charts, "render_chart", render_holding_the_big_one)
    big = asyncio.create_task(acme.get("/api/v1/instruments/BIG/chart.png"))
    assert await asyncio.to_thread(big_started.wait, 30), "the big chart never started rendering"
    small = await asyncio.wait_for(acme.get("/api/v1/instruments/ACME/chart.png?width=400&height=300"), 30)
    assert small.status_code == 200
    assert not big.done(), "the big chart waits for the small one's answer"
    small_answered.set()
    assert (await big).status_code == 200
    title, points = drawn["BIG"]
    assert "5m (from 1m bars)" in title
    assert 2_000 < points <= 5_000
    assert "from" not in drawn["ACME"][0]  # 400 daily bars are drawn as they are
