"""Reports of instruments, backtests and forecasts, as JSON and as PDF read back with pypdf, on both
databases; and `quantdesk report`."""

import io
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from quantdesk.cli.main import app
from quantdesk.reports.builders import monthly_returns
from tests.factories import bars_as_csv, bars_as_json, make_bars

BARS = make_bars(600, seed=5, weekdays_only=True)


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME", "name": "Acme Corp", "asset_class": "stock"})
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(BARS))
    return client


def pdf_pages(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def table(report: dict[str, Any], title_start: str) -> Any:
    for section in report["sections"]:
        for block in section["blocks"]:
            if block["type"] == "table" and block["title"].startswith(title_start):
                return block
    raise AssertionError(f"no table {title_start!r}")


async def test_a_backtest_report_as_json_and_as_a_pdf_whose_trade_table_splits_across_pages(acme: httpx.AsyncClient):
    run = (await acme.post("/api/v1/backtests", json={"symbol": "ACME", "params": {"fast": 2, "slow": 5}})).json()
    assert len(run["trades"]) > 60  # enough rows to need more than one page
    report = (await acme.get(f"/api/v1/reports/backtest/{run['id']}")).json()
    assert report["kind"] == "backtest"
    assert [s["heading"] for s in report["sections"]] == ["Metrics", "Equity", "Monthly returns", "Trades"]
    metrics = table(report, "every metric")
    assert [row[0] for row in metrics["rows"]] == [name.replace("_", " ") for name in run["metrics"]]
    assert len(table(report, f"{len(run['trades'])} trades")["rows"]) == len(run["trades"])
    assert {p["name"] for p in report["parameters"]} >= {"instrument", "strategy", "range", "settings"}
    equity = next(b for s in report["sections"] for b in s["blocks"] if b["type"] == "chart")
    assert (await acme.get(equity["href"])).status_code == 200

    response = await acme.get(f"/api/v1/reports/backtest/{run['id']}?format=pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    pages = pdf_pages(response.content)
    assert len(pages) >= 3
    assert all(f"page {n} of {len(pages)}" in text for n, text in enumerate(pages, start=1))
    assert f"Backtest {run['id']}: ACME sma_cross" in pages[0]
    assert "sharpe" in "".join(pages)
    assert "profit factor" in "".join(pages)
    trade_pages = [text for text in pages if "entry time" in text]
    assert len(trade_pages) >= 2  # the header row repeats on every page the table reaches
    text = "".join(pages)
    assert all(t["entry_time"][:16].replace("T", " ") in text for t in run["trades"])


async def test_an_instrument_report(acme: httpx.AsyncClient):
    report = (await acme.get("/api/v1/reports/instrument/acme?start=2024-03-01")).json()
    assert report["id"] == "ACME"
    assert [s["heading"] for s in report["sections"]] == ["Summary statistics", "Price", "Returns distribution"]
    distribution = table(report, "returns per bar")
    assert [row[0] for row in distribution["rows"]][:3] == ["bars with a return", "mean", "standard deviation"]
    price = next(b for b in report["sections"][1]["blocks"] if b["type"] == "chart")
    assert (await acme.get(price["href"])).headers["content-type"] == "image/png"
    pdf = await acme.get("/api/v1/reports/instrument/ACME?format=pdf")
    text = "".join(pdf_pages(pdf.content))
    assert "ACME: market report" in text
    assert "percentile 99" in text
    assert "Acme Corp" in text


async def test_a_forecast_report(acme: httpx.AsyncClient):
    forecast = (
        await acme.post("/api/v1/forecasts", json={"symbol": "ACME", "horizon": 10, "as_of": "2026-01-30"})
    ).json()
    report = (await acme.get(f"/api/v1/reports/forecast/{forecast['id']}")).json()
    errors = table(report, "errors")
    assert [row[0] for row in errors["rows"]] == [
        "this forecast, so far",
        "model hold-out (one step)",
        "model in sample (one step)",
    ]
    assert errors["rows"][0][1] == 10  # every predicted day is stored already
    assert len(table(report, "every predicted bar")["rows"]) == 10
    pdf = await acme.get(f"/api/v1/reports/forecast/{forecast['id']}?format=pdf")
    text = "".join(pdf_pages(pdf.content))
    assert f"Forecast {forecast['id']}: ACME linear" in text
    assert "scikit-learn" in text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/reports/portfolio/1", 422, "instrument"),
        ("/api/v1/reports/backtest/999", 404, "no backtest 999"),
        ("/api/v1/reports/forecast/999", 404, "no forecast 999"),
        ("/api/v1/reports/backtest/abc", 422, "numeric id"),
        ("/api/v1/reports/instrument/NOPE", 404, "NOPE"),
        ("/api/v1/reports/instrument/ACME?format=docx", 422, "format"),
    ],
)
async def test_bad_report_requests(acme: httpx.AsyncClient, path: str, status: int, message: str):
    response = await acme.get(path)
    assert response.status_code == status, response.text
    assert message in response.text


def test_monthly_returns_by_hand():
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-31", "2024-02-29", "2024-03-15", "2025-01-10"], tz="UTC")
    equity = pd.Series([100.0, 110.0, 99.0, 99.0, 108.9], index=index)
    rows = monthly_returns(equity)
    assert rows[0][:4] == ["2024", 10.0, -10.0, 0.0]
    assert rows[0][4:13] == [None] * 9
    assert rows[0][13] == -1.0
    assert rows[1][1] == 10.0
    assert rows[1][13] == 10.0


def test_report_command_writes_pdf_and_json(use_database: str, engine, tmp_path: Path):
    csv = tmp_path / "acme.csv"
    csv.write_text(bars_as_csv(BARS))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(csv), "--symbol", "ACME"]).exit_code == 0
    assert runner.invoke(app, ["backtest", "ACME", "--fast", "10", "--slow", "30"]).exit_code == 0
    pdf = tmp_path / "report.pdf"
    written = runner.invoke(app, ["report", "backtest", "1", "-o", str(pdf)])
    assert written.exit_code == 0, written.output
    assert "Backtest 1: ACME sma_cross" in pdf_pages(pdf.read_bytes())[0]
    as_json = tmp_path / "report.json"
    assert runner.invoke(app, ["report", "instrument", "ACME", "-o", str(as_json)]).exit_code == 0
    assert '"kind": "instrument"' in as_json.read_text()
    missing = runner.invoke(app, ["report", "forecast", "7", "-o", str(pdf)])
    assert missing.exit_code == 1
    assert "no forecast 7" in missing.output
