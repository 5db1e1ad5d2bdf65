"""The README's "Try it" is real: its commands run as written, in order, in bash, against a server and a
database made as `make run` makes them, and print what the README shows.

An expected line matches an output line of its command whole (runs of spaces count as one), with `…`
standing for anything; the expected lines of a command are found in order. The one change made to the
commands is the server's port, which a test cannot take for granted."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MARKER = "<<<readme step {}>>>"


def try_it_steps() -> list[tuple[str, list[str]]]:
    """(command, expected lines) of every console block under '## Try it', in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in normalise(expected).split("…")))


def normalise(line: str) -> str:
    return " ".join(line.split())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder like a fresh clone after `make run`: the examples, .venv, and ./quantdesk.db migrated with
    the demo loaded."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    for command in (["db", "upgrade"], ["demo", "--if-empty"]):
        subprocess.run(
            [str(BIN / "quantdesk"), *command], cwd=tmp_path, env=clean_env(), check=True, capture_output=True
        )
    return tmp_path


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: none of the test run's quantdesk settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("QUANTDESK_")}
    return env | {"COLUMNS": "120", "QUANTDESK_OPEN_SIGNUP": "true"}  # as `make run` serves


def test_the_readme_try_it_session_runs_as_written(project: Path):
    steps = try_it_steps()
    assert len(steps) >= 10
    port = free_port()
    script = ["set -euo pipefail"]
    for number, (command, _) in enumerate(steps):
        # The marker on a line of its own even after output without a final newline (curl's JSON).
        script += [f"printf '\\n{MARKER.format(number)}\\n'", command.replace(":8000", f":{port}")]
    log = project / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(BIN / "quantdesk"), "serve", "--port", str(port)],
            cwd=project,
            env=clean_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server, log)
            ran = subprocess.run(
                ["bash", "-c", "\n".join(script)],
                cwd=project,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            server.terminate()
            server.wait(10)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert "Traceback" not in output + log.read_text()
    pieces = re.split(r"\n<<<readme step (\d+)>>>\n", ran.stdout)[1:]
    printed = {int(number): text for number, text in zip(pieces[::2], pieces[1::2], strict=True)}
    assert sorted(printed) == list(range(len(steps))), output
    for number, (command, expected) in enumerate(steps):
        lines = [normalise(line) for line in printed[number].splitlines()]
        position = 0
        for wanted in expected:
            found = next((i for i in range(position, len(lines)) if pattern(wanted).fullmatch(lines[i])), None)
            assert found is not None, f"{command!r} did not print {wanted!r} (in order); it printed:\n{printed[number]}"
            position = found + 1
