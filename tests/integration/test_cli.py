"""The quantdesk command, run in-process against the test database."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli.main import app
from tests.factories import bars_as_csv, make_bars
from tests.unit.test_csv_formats import YAHOO

runner = CliRunner()


@pytest.fixture
def cli(use_database: str, engine) -> CliRunner:
    """A runner whose commands use the (emptied) test database."""
    return runner


def test_ingest_reports_what_it_stored(cli: CliRunner, tmp_path: Path):
    path = tmp_path / "acme.csv"
    path.write_bytes(YAHOO)
    result = cli.invoke(app, ["ingest", str(path), "--symbol", "acme"])
    assert result.exit_code == 0, result.output
    assert "yahoo" in result.output
    assert "inserted" in result.output
    assert "skipped 1 row(s)" in result.output
    listing = cli.invoke(app, ["instruments"])
    assert "ACME" in listing.output
    assert "185.1400" in listing.output


def test_ingest_errors_are_messages_not_tracebacks(cli: CliRunner, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2024-01-01,1,0.5,2,1,1\n2024-01-02,1,2,0.5,1,1\n")
    result = cli.invoke(app, ["ingest", str(bad), "--symbol", "ACME"])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "is below low" in result.output
    assert "Traceback" not in result.output
    missing = cli.invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--symbol", "ACME"])
    assert missing.exit_code == 1
    assert "no such file" in missing.output
    no_create = cli.invoke(app, ["ingest", str(bad), "--symbol", "NEW", "--no-create"])
    assert no_create.exit_code == 1
    assert "no instrument 'NEW'" in no_create.output
    bad_interval = cli.invoke(app, ["ingest", str(bad), "--symbol", "ACME", "--interval", "3d"])
    assert bad_interval.exit_code == 1
    assert "unknown interval" in bad_interval.output


def test_ingest_with_explicit_interval(cli: CliRunner, tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text(bars_as_csv(make_bars(30)))
    result = cli.invoke(app, ["ingest", str(path), "--symbol", "ACME", "--interval", "1d"])
    assert result.exit_code == 0
    assert "given" in result.output


def test_demo_loads_once_with_if_empty(cli: CliRunner):
    first = cli.invoke(app, ["demo", "--if-empty", "--no-minutes", "--end", "2025-01-01"])
    assert first.exit_code == 0, first.output
    assert "ACME" in first.output
    assert "synthetic" in first.output
    second = cli.invoke(app, ["demo", "--if-empty", "--no-minutes"])
    assert second.exit_code == 0
    assert "nothing loaded" in second.output
    bad = cli.invoke(app, ["demo", "--end", "someday"])
    assert bad.exit_code == 1
    assert "not an ISO date" in bad.output


def test_fetch_errors_are_clean(cli: CliRunner, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("QUANTDESK_ALPHAVANTAGE_API_KEY", raising=False)
    result = cli.invoke(app, ["fetch", "alphavantage", "IBM"])
    assert result.exit_code == 1
    assert "QUANTDESK_ALPHAVANTAGE_API_KEY" in result.output
    unknown = cli.invoke(app, ["fetch", "yahoo", "IBM"])
    assert unknown.exit_code == 1
    assert "unknown provider" in unknown.output
    bad_coin = cli.invoke(app, ["fetch", "coingecko", "ZZZUSD"])
    assert bad_coin.exit_code == 1
    assert "coin_id" in bad_coin.output


def test_db_commands(cli: CliRunner):
    upgrade = cli.invoke(app, ["db", "upgrade"])
    assert upgrade.exit_code == 0
    assert "database at head" in upgrade.output
    check = cli.invoke(app, ["db", "check"])
    assert check.exit_code == 0
    assert "no drift" in check.output
    assert cli.invoke(app, ["db", "current"]).exit_code == 0
    assert cli.invoke(app, ["version"]).exit_code == 0


def test_commands_on_an_unmigrated_database_say_to_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from quantdesk.core import config

    monkeypatch.setenv("QUANTDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    config.get_settings.cache_clear()
    result = runner.invoke(app, ["instruments"])
    config.get_settings.cache_clear()
    assert result.exit_code == 1
    assert "quantdesk db upgrade" in result.output


def test_regression_invalid_options_are_messages_not_tracebacks(cli: CliRunner, tmp_path: Path):
    days = cli.invoke(app, ["fetch", "coingecko", "BTCUSD", "--days", "0"])
    assert days.exit_code == 1
    assert "days: Input should be greater than or equal to 1" in days.output
    path = tmp_path / "a.csv"
    path.write_bytes(YAHOO)
    symbol = cli.invoke(app, ["ingest", str(path), "--symbol", "A B"])
    assert symbol.exit_code == 1
    assert "symbol 'A B' is not valid" in symbol.output
    assert "Traceback" not in days.output + symbol.output


def test_stats_and_enriched_commands(cli: CliRunner, tmp_path: Path):
    path = tmp_path / "acme.csv"
    path.write_text(bars_as_csv(make_bars(60)))
    assert cli.invoke(app, ["ingest", str(path), "--symbol", "ACME"]).exit_code == 0
    stats = cli.invoke(app, ["stats", "ACME"])
    assert stats.exit_code == 0, stats.output
    assert "annualized_volatility_pct" in stats.output
    out = tmp_path / "enriched.csv"
    enriched = cli.invoke(app, ["enriched", "ACME", "--indicators", "rsi:14,atr:14", "-o", str(out)])
    assert enriched.exit_code == 0, enriched.output
    header = out.read_text().splitlines()[0]
    assert header.startswith("timestamp,open")
    assert header.endswith("rsi_14,atr_14")
    printed = cli.invoke(app, ["enriched", "ACME"])
    assert printed.exit_code == 0
    assert "last 10 rows" in printed.output
    bad = cli.invoke(app, ["enriched", "ACME", "--indicators", "foo"])
    assert bad.exit_code == 1
    assert "unknown indicator" in bad.output
