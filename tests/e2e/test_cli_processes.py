"""Every subcommand of the installed ``quantdesk`` command, each in a process of its own, as a user runs it.

In-process tests (``CliRunner``) share the test session's imports: every model is already loaded, so a
command that would fail in a fresh shell (a relationship naming a class nobody imported) passes there.
Here each call starts from nothing. A command added without a real call below fails the second test; help
texts are read in this process (the first test), since every command already runs here in its own."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from quantdesk.cli.main import app
from tests.e2e.servers import free_port, wait_until_healthy
from tests.factories import bars_as_csv, make_bars

QUANTDESK = Path(sys.executable).parent / "quantdesk"


def leaf_commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


ALL_COMMANDS = sorted(leaf_commands(typer.main.get_group(app)))


class Shell:
    """Runs ``quantdesk ...`` in a new process on one database and remembers which commands ran."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.env = {**os.environ, "QUANTDESK_DATABASE_URL": database_url, "COLUMNS": "200"}
        self.workdir = workdir
        self.ran: set[tuple[str, ...]] = set()

    def __call__(self, *args: str, expect: int = 0) -> str:
        result = subprocess.run(
            [str(QUANTDESK), *args], env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=300
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, f"quantdesk {' '.join(args)}:\n{output}"
        assert result.returncode == expect, f"quantdesk {' '.join(args)} exited {result.returncode}:\n{output}"
        self.ran.add(self.command_of(args))
        return output

    @staticmethod
    def command_of(args: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(args[:2]) if tuple(args[:2]) in ALL_COMMANDS else tuple(args[:1])


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Shell:
    workdir = tmp_path_factory.mktemp("cli")
    return Shell(f"sqlite+aiosqlite:///{workdir / 'fresh.db'}", workdir)


def test_every_subcommand_answers_help_and_says_what_it_does():
    # In this process: the fresh-process guarantee is the next test's, which runs every command for real.
    runner = CliRunner()
    for command in ALL_COMMANDS:
        output = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "Usage:" in output, command
        # Every command says what it does: the line under the usage is not empty.
        assert output.split("Usage:", 1)[1].strip().splitlines()[1:], command


def test_each_subcommand_does_its_job_in_a_fresh_process(shell: Shell, tmp_path: Path):
    shell.ran.clear()
    assert shell("version").strip()
    assert "database at head" in shell("db", "upgrade")
    shell("db", "current")
    assert "no drift" in shell("db", "check")
    assert "ACME" in shell("demo", "--no-minutes", "--end", "2025-01-01")
    assert "GLOBEX" in shell("instruments")
    assert "2024-12-31" in shell("bars", "ACME", "--last", "2")
    assert "volatility" in shell("stats", "ACME").lower()
    shell("enriched", "ACME", "--start", "2024-12-01", "-o", str(tmp_path / "enriched.csv"))
    assert (tmp_path / "enriched.csv").read_text().startswith("timestamp")
    shell("chart", "ACME", "--start", "2024-06-01", "-o", str(tmp_path / "acme.png"))
    assert (tmp_path / "acme.png").read_bytes().startswith(b"\x89PNG")
    (tmp_path / "newco.csv").write_text(bars_as_csv(make_bars(30)))
    assert "inserted" in shell("ingest", str(tmp_path / "newco.csv"), "--symbol", "NEWCO")
    no_key = shell("fetch", "alphavantage", "IBM", expect=1)  # no network here: the key is asked for first
    assert "QUANTDESK_ALPHAVANTAGE_API_KEY" in no_key

    assert "sharpe" in shell("backtest", "ACME", "--fast", "10", "--slow", "30").lower()
    assert "sharpe" in shell("sweep", "ACME", "--fast", "5:20:5", "--slow", "30:60:10").lower()
    examples = Path(__file__).parents[2] / "examples" / "strategies"
    donchian = str(examples / "donchian_breakout.py")
    assert "donchian_breakout n=30" in shell("backtest", "ACME", "--strategy-file", donchian, "--param", "n=30")
    swept = shell("sweep", "ACME", "--strategy-file", donchian, "--grid", "n=10:30:10", "--grid", "m=5,10")
    assert "best 6 by sharpe" in swept
    assert "rsi_dip" in shell("backtest", "ACME", "--strategy-file", str(examples / "rsi_dip.json"))
    walked = shell("walkforward", "ACME", "--train", "200", "--test", "100", "--fast", "5,10", "--slow", "30,60")
    assert "walk-forward" in walked
    assert "efficiency" in walked
    (tmp_path / "typo.json").write_text('{"name": "typo", "entry": "crosses_above(rsl(close, 3), 50)"}')
    typo = shell("backtest", "ACME", "--strategy-file", str(tmp_path / "typo.json"), expect=1)
    assert "entry at 15: unknown function 'rsl'; did you mean 'rsi'?" in typo
    # Bad input is a one-line error, not a traceback (Shell checks), wherever it is found.
    assert "sizing: Input should be" in shell("sweep", "ACME", "--fast", "5", "--slow", "20", "--sizing", "x", expect=1)
    unaffordable = ("BTCUSD", "--fast", "5", "--slow", "20", "--cash", "100")  # a bitcoin costs more than 100
    assert "not one whole unit of BTCUSD" in shell("backtest", *unaffordable, expect=1)
    assert "--fractional" in shell("sweep", *unaffordable, expect=1)
    assert "trades" in shell("backtest", *unaffordable, "--fractional")
    assert "horizon" in shell("forecast", "predict", "ACME", "--horizon", "0", expect=1)
    shell("report", "backtest", "1", "-o", str(tmp_path / "backtest.json"))
    assert (tmp_path / "backtest.json").read_text().startswith("{")
    shell("forecast", "train", "ACME")
    shell("forecast", "predict", "ACME", "--horizon", "5")
    shell("forecast", "show", "1")
    assert "naive" in shell("forecast", "evaluate", "ACME", "--model", "naive", "--folds", "2", "--horizon", "5")

    assert "API key" in shell("users", "create", "carol")
    assert "API key" in shell("users", "key", "carol")
    assert "carol" in shell("users", "list")
    shell("users", "disable", "carol")
    assert "carol" in shell("accounts", "open", "carol", "spare", "--deposit", "1000")
    assert "spare" in shell("accounts", "list")
    shell("accounts", "deposit", "1", "500")
    shell("accounts", "withdraw", "1", "250")
    shell("order", "buy", "1", "ACME", "2")
    shell("order", "sell", "1", "ACME", "1")
    assert "ACME" in shell("portfolio", "1")
    shell("price", "GLOBEX", "70")
    shell("leaderboard")
    shell("replay", "ACME", "--from", "2024-12-20", "--speed", "1000000000")

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(QUANTDESK), "serve", "--port", str(port)], env=shell.env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server, log)
            shell.ran.add(("serve",))
        finally:
            server.terminate()
            server.wait(10)
    assert "Traceback" not in log.read_text()
    assert shell.ran == set(ALL_COMMANDS), f"not run here: {sorted(set(ALL_COMMANDS) - shell.ran)}"
