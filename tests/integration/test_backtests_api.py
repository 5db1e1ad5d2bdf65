"""POST/GET /api/v1/backtests and `quantdesk backtest`, on both databases."""

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from quantdesk.backtest import service
from quantdesk.backtest.schemas import BacktestCreate
from quantdesk.backtest.strategies import resolve
from quantdesk.cli.main import app
from tests.factories import bars_as_csv, bars_as_json, make_bars

BARS = make_bars(600, seed=21)
METRIC_NAMES = {
    "start",
    "end",
    "duration",
    "exposure_pct",
    "equity_final",
    "equity_peak",
    "return_pct",
    "buy_and_hold_return_pct",
    "cagr_pct",
    "volatility_ann_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "avg_drawdown_pct",
    "max_drawdown_duration",
    "trades",
    "win_rate_pct",
    "best_trade_pct",
    "worst_trade_pct",
    "avg_trade_pct",
    "profit_factor",
    "expectancy_pct",
    "sqn",
    "commissions",
}


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME", "asset_class": "crypto"})
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(BARS))
    return client


async def test_run_store_and_read_a_backtest(acme: httpx.AsyncClient):
    body = {
        "symbol": "ACME",
        "strategy": "sma_cross",
        "params": {"fast": 10, "slow": 30},
        "cash": 10_000,
        "commission_pct": 0.1,
        "equity_points": 50,
    }
    response = await acme.post(
        "/api/v1/backtests?equity_points=50", json={k: v for k, v in body.items() if k != "equity_points"}
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert set(run["metrics"]) == METRIC_NAMES
    assert run["params"] == {"fast": 10, "slow": 30}
    assert len(run["equity"]) == 50
    assert run["equity"][-1]["equity"] == pytest.approx(run["metrics"]["equity_final"])
    closed = [t for t in run["trades"] if t["exit_reason"] != "open"]
    assert run["metrics"]["trades"] == len(closed) > 0
    first = run["trades"][0]
    assert set(first) >= {
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "size",
        "pnl",
        "return_pct",
        "bars_held",
        "exit_reason",
    }
    stored = (await acme.get(f"/api/v1/backtests/{run['id']}?equity_points=0")).json()
    assert stored["metrics"] == run["metrics"]
    assert stored["equity"] == []
    listed = (await acme.get("/api/v1/backtests?symbol=acme")).json()
    assert [r["id"] for r in listed] == [run["id"]]


async def test_the_api_result_is_the_engine_result_on_the_same_bars(acme: httpx.AsyncClient):
    run = (await acme.post("/api/v1/backtests", json={"symbol": "ACME", "params": {"fast": 5, "slow": 20}})).json()
    strategy, params = resolve("sma_cross", {"fast": 5, "slow": 20})
    body = BacktestCreate(symbol="ACME", params={"fast": 5, "slow": 20})
    direct = service.simulate(BARS.to_frame(), strategy, params, service.costs_of(body), False, 365.0)
    assert run["metrics"]["equity_final"] == pytest.approx(direct.metrics.equity_final)
    assert run["metrics"]["sharpe"] == pytest.approx(direct.metrics.sharpe)


async def test_several_instruments_bars_never_mix(acme: httpx.AsyncClient):
    other = make_bars(600, seed=99)
    await acme.post("/api/v1/instruments", json={"symbol": "OTHER", "asset_class": "crypto"})
    await acme.post("/api/v1/instruments/OTHER/bars?interval=1d", json=bars_as_json(other))
    a = (await acme.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "buy_and_hold"})).json()
    b = (await acme.post("/api/v1/backtests", json={"symbol": "OTHER", "strategy": "buy_and_hold"})).json()
    assert a["metrics"]["buy_and_hold_return_pct"] == pytest.approx((BARS.close[-1] / BARS.close[0] - 1) * 100)
    assert b["metrics"]["buy_and_hold_return_pct"] == pytest.approx((other.close[-1] / other.close[0] - 1) * 100)


async def test_stops_costs_and_long_short_are_applied(acme: httpx.AsyncClient):
    body = {
        "symbol": "ACME",
        "strategy": "ema_cross",
        "params": {"fast": 5, "slow": 20},
        "stop_loss_pct": 2,
        "take_profit_pct": 4,
        "slippage_bps": 5,
        "commission_fixed": 1,
        "allow_short": True,
        "fractional": True,
    }
    run = (await acme.post("/api/v1/backtests", json=body)).json()
    reasons = {t["exit_reason"] for t in run["trades"]}
    assert reasons & {"stop_loss", "take_profit"}
    assert {t["direction"] for t in run["trades"]} == {"long", "short"}
    assert run["metrics"]["commissions"] > 0
    assert not all(float(t["size"]).is_integer() for t in run["trades"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"strategy": "magic"}, 422, "valid ones: sma_cross, ema_cross"),
        ({"params": {"window": 3}}, 422, "its parameters: fast, slow"),
        ({"params": {"fast": 30, "slow": 10}}, 422, "must be shorter than slow"),
        ({"params": {"fast": 100, "slow": 1000}}, 422, "needs at least 1002 bars; the range has 600"),
        ({"cash": 0}, 422, "cash"),
        ({"cash": -5}, 422, "cash"),
        ({"start": "2030-01-01"}, 404, "stored 1d bars span"),
        ({"sizing": "everything"}, 422, "sizing"),
        ({"stop_loss_pct": 150}, 422, "stop_loss_pct"),
    ],
)
async def test_bad_requests_are_clear_and_store_nothing(acme: httpx.AsyncClient, body, status, message):
    response = await acme.post("/api/v1/backtests", json={"symbol": "ACME", **body})
    assert response.status_code == status, response.text
    assert message in response.text
    assert (await acme.get("/api/v1/backtests")).json() == []


async def test_unknown_backtest_is_404(client: httpx.AsyncClient):
    response = await client.get("/api/v1/backtests/12345")
    assert response.status_code == 404
    assert "GET /api/v1/backtests" in response.json()["detail"]


def test_backtest_command(use_database: str, engine, tmp_path: Path):
    path = tmp_path / "acme.csv"
    path.write_text(bars_as_csv(make_bars(400)))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--symbol", "ACME"]).exit_code == 0
    table = runner.invoke(
        app, ["backtest", "ACME", "--strategy", "sma_cross", "--fast", "10", "--slow", "40", "--cash", "5000"]
    )
    assert table.exit_code == 0, table.output
    assert "max_drawdown_pct" in table.output
    as_json = runner.invoke(app, ["backtest", "ACME", "--strategy", "rsi_reversion", "--param", "lower=25", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert '"lower": 25.0' in as_json.output
    bad = runner.invoke(app, ["backtest", "ACME", "--fast", "50", "--slow", "10"])
    assert bad.exit_code == 1
    assert "must be shorter than slow" in bad.output
    malformed = runner.invoke(app, ["backtest", "ACME", "--param", "lower"])
    assert malformed.exit_code == 1
    assert "key=number" in malformed.output


async def test_equity_chart_is_a_png_of_the_asked_size(acme: httpx.AsyncClient):
    from tests.integration.test_charts import distinct_colours, png_size

    run = (await acme.post("/api/v1/backtests", json={"symbol": "ACME", "params": {"fast": 5, "slow": 20}})).json()
    chart = await acme.get(f"/api/v1/backtests/{run['id']}/equity.png?width=900&height=500")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert png_size(chart.content) == (900, 500)
    assert distinct_colours(chart.content) > 20
    assert (await acme.get("/api/v1/backtests/999/equity.png")).status_code == 404
    assert (await acme.get(f"/api/v1/backtests/{run['id']}/equity.png?width=10")).status_code == 422


async def test_a_run_that_cannot_buy_one_whole_unit_says_so_instead_of_trading_nothing(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "PRICY"})
    rows = [row | {k: row[k] * 1000 for k in ("open", "high", "low", "close")} for row in bars_as_json(make_bars(300))]
    assert (await client.post("/api/v1/instruments/PRICY/bars", json=rows)).status_code in (200, 201)
    body = {"symbol": "PRICY", "params": {"fast": 5, "slow": 20}, "cash": 100}
    refused = await client.post("/api/v1/backtests", json=body)
    assert refused.status_code == 422, refused.text
    assert "not one whole unit of PRICY can be bought" in refused.json()["detail"]
    sweep = await client.post("/api/v1/sweeps", json={**body, "grid": {"fast": [5, 10], "slow": [20]}})
    assert sweep.status_code == 422
    fractional = await client.post("/api/v1/backtests", json={**body, "fractional": True})
    assert fractional.status_code == 201, fractional.text
    assert fractional.json()["metrics"]["trades"] > 0
