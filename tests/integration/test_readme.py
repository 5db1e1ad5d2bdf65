"""The README's CLI session is real: each command runs, and each output line shown appears, in order."""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli.main import app
from quantdesk.core import config

ROOT = Path(__file__).resolve().parents[2]


def readme_session() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) pairs of the first console block under '## Try it'."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try it", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def normalise(line: str) -> str:
    return " ".join(line.split())


def test_readme_cli_session_prints_what_the_readme_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", "sqlite:///example.db")
    monkeypatch.setenv("COLUMNS", "100")
    config.get_settings.cache_clear()
    try:
        for command, expected in readme_session():
            words = shlex.split(command)
            assert words[0] == "quantdesk"
            result = CliRunner().invoke(app, words[1:])
            assert result.exit_code == 0, (command, result.output)
            actual = [normalise(line) for line in result.output.splitlines()]
            position = 0
            for line in map(normalise, expected):
                assert line in actual[position:], f"{command!r} did not print {line!r}:\n{result.output}"
                position = actual.index(line, position) + 1
    finally:
        config.get_settings.cache_clear()
