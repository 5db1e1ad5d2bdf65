"""quantdesk servers in their own processes, as production runs them (`python -m quantdesk serve`)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120.0) -> None:
    """Until ``url``/health answers 200; fails with the end of the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited while starting: {log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy in {timeout_s} s: {log.read_text()[-3000:]}")


class ServerProcess:
    def __init__(
        self, database_url: str, log: Path, workers: int = 1, settings: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "QUANTDESK_DATABASE_URL": database_url,
            "QUANTDESK_LOG_LEVEL": "WARNING",
            **{f"QUANTDESK_{name.upper()}": value for name, value in (settings or {}).items()},
        }
        self._log = log.open("ab")
        command = [sys.executable, "-m", "quantdesk", "serve", "--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.url, self.process, log)

    def kill(self) -> None:
        """kill -9: no shutdown, no rollback, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
