"""The seed's journey end to end over HTTP: users, deposits, priced assets, buys and sells, portfolio
values and average costs, gems with milestones, and a leaderboard with ties; then the CLI's view."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from quantdesk.cli.main import app as cli
from quantdesk.gamification.leaderboard import competition_ranks
from tests.conftest import bearer
from tests.factories import bars_as_csv, make_bars
from tests.integration.trading_helpers import books, open_account, order


def test_competition_ranks_share_places_and_skip_after_ties():
    assert competition_ranks([10, 7, 7, 3, None]) == [1, 2, 2, 4, 5]
    assert competition_ranks([None, None]) == [1, 1]


async def test_the_seed_journey(market, client: httpx.AsyncClient, anonymous: httpx.AsyncClient):
    keys = {}
    for name in ("ann", "ben", "cat", "dan"):
        created = await client.post("/api/v1/users", json={"username": name})
        keys[name] = created.json()["api_key"]

    def as_user(name: str) -> dict[str, str]:
        return bearer(keys[name])

    accounts = {}
    for name in keys:
        response = await anonymous.post(
            "/api/v1/accounts", json={"name": "main", "initial_deposit": "10000"}, headers=as_user(name)
        )
        accounts[name] = response.json()["id"]
    await anonymous.post(f"/api/v1/accounts/{accounts['ann']}/deposit", json={"amount": "5000"}, headers=as_user("ann"))

    async def trade(name: str, side: str, quantity: str, symbol: str = "ACME") -> Any:
        body = {"account_id": accounts[name], "symbol": symbol, "side": side, "quantity": quantity}
        response = await anonymous.post("/api/v1/orders", json=body, headers=as_user(name))
        assert response.status_code == 201, response.text
        return response.json()

    # ann: 10 trades (milestones at the 5th and 10th); ben and cat: 5 each (a tie); dan: none.
    for _ in range(5):
        await trade("ann", "buy", "10")
        await trade("ann", "sell", "10")
    await client.patch("/api/v1/assets/ACME", json={"price": "120"})
    for name in ("ben", "cat"):
        await trade(name, "buy", "20")
        await trade(name, "buy", "0.1", "BTC")
        await trade(name, "sell", "10")
        await trade(name, "buy", "5")
        await trade(name, "sell", "5")

    portfolio = (await anonymous.get("/api/v1/portfolio", headers=as_user("ben"))).json()[0]
    acme = next(p for p in portfolio["positions"] if p["symbol"] == "ACME")
    assert (acme["quantity"], acme["avg_cost"], acme["price"]) == ("10.00000000", "120.00000000", "120.00000000")
    btc = next(p for p in portfolio["positions"] if p["symbol"] == "BTC")
    assert btc["market_value"] == "5000.00000000"
    assert Decimal(portfolio["equity"]) == Decimal(portfolio["cash"]) + Decimal("1200") + Decimal("5000")
    assert portfolio["equity"] == "10000.00000000"  # no costs configured: value only moved between cash and assets
    for name in keys:
        await books(anonymous, accounts[name], as_user(name))

    board = (await anonymous.get("/api/v1/leaderboard?by=gems&top=10")).json()
    rows = [(row["rank"], row["username"], row["gems"], row["trades"]) for row in board]
    assert rows == [
        (1, "ann", 10 + 5 + 10, 10),
        (2, "ben", 5 + 5, 5),
        (2, "cat", 5 + 5, 5),
        (4, "dan", 0, 0),
    ]
    by_return = (await anonymous.get("/api/v1/leaderboard?by=return_pct&window=7d")).json()
    # Every trade happened at one price per leg: nobody realised anything, so all four share the first
    # place (root, an admin, is not a competitor).
    assert [(row["rank"], row["return_pct"]) for row in by_return] == [(1, 0.0)] * 4
    top_two = (await anonymous.get("/api/v1/leaderboard?top=2")).json()
    assert [row["username"] for row in top_two] == ["ann", "ben"]
    assert (await anonymous.get("/api/v1/leaderboard?by=luck")).status_code == 422


def test_the_cli_tells_the_same_story(use_database: str, engine, tmp_path: Path):
    runner = CliRunner()
    created = runner.invoke(cli, ["users", "create", "Boss", "--admin"])
    assert created.exit_code == 0, created.output
    assert "created admin Boss" in created.output
    assert "qd_" in created.output
    assert runner.invoke(cli, ["users", "create", "trader1"]).exit_code == 0
    assert runner.invoke(cli, ["users", "create", "TRADER1"]).exit_code == 1
    opened = runner.invoke(cli, ["accounts", "open", "trader1", "main", "--deposit", "1000"])
    assert "opened account 1 for trader1 with 1000 USD" in opened.output
    no_asset = runner.invoke(cli, ["order", "buy", "1", "ACME", "1"])
    assert no_asset.exit_code == 1
    assert "ACME" in no_asset.output
    csv = tmp_path / "acme.csv"
    csv.write_text(bars_as_csv(make_bars(30)))
    assert runner.invoke(cli, ["ingest", str(csv), "--symbol", "ACME"]).exit_code == 0
    priced = runner.invoke(cli, ["price", "ACME", "50"])
    assert "ACME at 50; 0 resting order(s) filled" in priced.output
    bought = runner.invoke(cli, ["order", "buy", "1", "ACME", "4"])
    assert bought.exit_code == 0, bought.output
    assert "filled" in bought.output
    assert "-200.00000000" in bought.output
    resting = runner.invoke(cli, ["order", "buy", "1", "ACME", "2", "--type", "limit", "--limit-price", "40"])
    assert "accepted" in resting.output
    assert "1 resting order(s) filled" in runner.invoke(cli, ["price", "ACME", "39.5"]).output
    refused = runner.invoke(cli, ["order", "sell", "1", "ACME", "100"])
    assert refused.exit_code == 1
    assert "holds 6.00000000" in refused.output
    assert "cash 700.00000000" in runner.invoke(cli, ["accounts", "withdraw", "1", "21"]).output  # 1000 - 200 - 79 - 21
    assert "cash 800.00000000" in runner.invoke(cli, ["accounts", "deposit", "1", "100"]).output
    assert runner.invoke(cli, ["accounts", "deposit", "1", "0"]).exit_code == 1
    portfolio = runner.invoke(cli, ["portfolio"])
    assert "equity 1037.00000000" in portfolio.output  # 800 cash + 6 ACME at 39.50
    board = runner.invoke(cli, ["leaderboard", "--by", "gems"])
    assert "trader1" in board.output
    listed = runner.invoke(cli, ["accounts", "list", "--user", "trader1"])
    assert "main" in listed.output
    assert "trader1" in runner.invoke(cli, ["users", "list"]).output
    assert "qd_" in runner.invoke(cli, ["users", "key", "trader1"]).output
    assert "disabled" in runner.invoke(cli, ["users", "disable", "trader1"]).output


@pytest.fixture
def private(app) -> None:
    app.state.settings.private = True


async def test_a_private_server_hides_market_data_from_anonymous_callers(market, private, anonymous, alice):
    assert (await anonymous.get("/api/v1/instruments")).status_code == 401
    assert (await anonymous.get("/api/v1/assets")).status_code == 401
    assert (await anonymous.get("/api/v1/leaderboard")).status_code == 401
    assert (await alice.get("/api/v1/instruments")).status_code == 200


async def test_research_runs_need_a_user_and_market_changes_an_admin(market, anonymous, alice):
    assert (await anonymous.get("/api/v1/instruments")).status_code == 200  # public reads
    assert (await anonymous.post("/api/v1/backtests", json={"symbol": "ACME"})).status_code == 401
    assert (await alice.post("/api/v1/instruments", json={"symbol": "X"})).status_code == 403
    assert (await anonymous.post("/api/v1/instruments", json={"symbol": "X"})).status_code == 401


async def test_returns_and_sharpe_come_from_closed_trades(market, client, alice):
    account = await open_account(alice, "10000")
    for buy, sell in (("100", "110"), ("110", "104.5"), ("104.5", "120")):
        await client.patch("/api/v1/assets/ACME", json={"price": buy})
        await order(alice, account, quantity="10")
        await client.patch("/api/v1/assets/ACME", json={"price": sell})
        await order(alice, account, side="sell", quantity="10")
    [row] = [r for r in (await alice.get("/api/v1/leaderboard?by=sharpe")).json() if r["username"] == "alice"]
    assert row["rank"] == 1
    assert row["return_pct"] == pytest.approx((100 - 55 + 155) / 10_000 * 100)  # realised P&L over deposits
    returns = [100 / 1000, -55 / 1100, 155 / 1045]  # P&L over the cost of each closed trade
    mean = sum(returns) / 3
    spread = (sum((r - mean) ** 2 for r in returns) / 2) ** 0.5
    assert row["sharpe"] == pytest.approx(mean / spread * 3**0.5)
