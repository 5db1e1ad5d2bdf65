"""chart.png: a valid, non-blank PNG of the asked size, the same bytes for the same input."""

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from quantdesk.cli.main import app
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
