"""`quantdesk replay`: stored bars played back as live prices, and a signal trade closing on them."""

from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from quantdesk.cli.main import app as cli
from quantdesk.core.timeparse import parse_instant
from quantdesk.trading.replay import Played, replay
from tests.integration.signal_helpers import send, settled, signal_of, webhook_path
from tests.integration.trading_helpers import open_account

CLOSES = {"2024-01-02": 104.0, "2024-01-03": 96.0, "2024-01-05": 112.0, "2024-01-08": 101.0}


async def store_bars(admin: httpx.AsyncClient) -> None:
    bars = [
        {"timestamp": day, "open": close, "high": close, "low": close, "close": close, "volume": 1}
        for day, close in CLOSES.items()
    ]
    stored = await admin.post("/api/v1/instruments/ACME/bars", json=bars)
    assert stored.status_code in (200, 201), stored.text


async def test_replayed_bars_move_the_price_and_close_a_signal_trade(
    app: FastAPI, market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    await store_bars(market)  # older than the admin's price of 100: the price stays 100
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    trade = await settled(alice, (await send(alice, path, "BUY ACME SL 95 TP 110")).json()["signal_id"])
    assert trade["entry_price"] == "100.00000000"
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    played: list[Played] = []
    count = await replay(
        app.state.sessionmaker, "acme", parse_instant("2024-01-02", "from"), 86_400, "1d", None, played.append, sleep
    )
    assert count == 4
    assert waits == [1.0, 2.0, 3.0]  # a day of bars per second, weekends included
    assert [step.filled for step in played] == [0, 0, 1, 0]  # 96 is above the stop; 112 passes the target
    closed = await signal_of(alice, trade["id"])
    assert (closed["status"], closed["exit_price"], closed["realized_pnl"]) == ("closed", "112.00000000", "12.00000000")
    assets = (await market.get("/api/v1/assets")).json()
    assert [(a["symbol"], a["price"], a["price_source"]) for a in assets if a["symbol"] == "ACME"] == [
        ("ACME", "101.00000000", "replay")
    ]


def test_the_cli_replays_and_refuses_clearly(use_database: str, engine: AsyncEngine, tmp_path: Path):
    csv = tmp_path / "acme.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n" + "".join(f"{d},{c},{c},{c},{c},1\n" for d, c in CLOSES.items())
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(csv), "--symbol", "ACME"]).exit_code == 0
    result = runner.invoke(cli, ["replay", "ACME", "--from", "2024-01-03", "--to", "2024-01-06", "--speed", "1e9"])
    assert result.exit_code == 0, result.output
    assert "2024-01-05 00:00 ACME 112" in result.output
    assert "replayed 2 bar(s)" in result.output
    assert runner.invoke(cli, ["replay", "NOPE", "--from", "2024-01-01"]).exit_code == 1
    bad_date = runner.invoke(cli, ["replay", "ACME", "--from", "yesterday"])
    assert bad_date.exit_code == 1
    assert "ISO 8601" in bad_date.output
    slow = runner.invoke(cli, ["replay", "ACME", "--from", "2024-01-01", "--speed", "0"])
    assert "speed must be above 0" in slow.output
    assert "no 1h bars" in runner.invoke(cli, ["replay", "ACME", "--from", "2024-01-01", "--interval", "1h"]).output
