"""`quantdesk serve --workers N`: the connections of one client spread over every worker process."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantdesk.api.serving import spreads_connections
from tests.e2e.servers import ServerProcess

pytestmark = pytest.mark.skipif(not spreads_connections(), reason="the kernel spreads connections on Linux only")

LISTEN, ESTABLISHED = "0A", "01"


def sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def tcp_sockets(port: int, state: str) -> set[str]:
    """The inodes of the IPv4 TCP sockets in ``state`` whose local port is ``port`` (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def workers_of(server: ServerProcess) -> list[int]:
    """The supervisor's worker processes (started by multiprocessing's spawn_main; its resource tracker,
    another child, is not one)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.fixture
def two_workers(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(sqlite_url, tmp_path / "server.log", workers=2)
    deadline = time.monotonic() + 60  # healthy once one worker answers; the other may still be starting
    while len(tcp_sockets(server.port, LISTEN)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield server
    server.stop()


def test_each_worker_listens_on_a_socket_of_its_own(two_workers: ServerProcess):
    listening = tcp_sockets(two_workers.port, LISTEN)
    workers = workers_of(two_workers)
    assert len(workers) == 2
    assert len(listening) == 2
    assert all(len(sockets_of(pid) & listening) == 1 for pid in workers)


async def test_the_connections_of_one_client_reach_both_workers(two_workers: ServerProcess):
    # Opened together, as a load generator or a proxy opens them: with one shared socket, the worker
    # that wakes first takes them all. Spread by the kernel, all 32 on one of 2 workers is a 1 in 2**31 case.
    connections = [await asyncio.open_connection("127.0.0.1", two_workers.port) for _ in range(32)]
    try:
        for _, writer in connections:
            writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        for reader, _ in connections:
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        established = tcp_sockets(two_workers.port, ESTABLISHED)
        held = [len(sockets_of(pid) & established) for pid in workers_of(two_workers)]
    finally:
        for _, writer in connections:
            writer.close()
    assert sum(held) == 32
    assert min(held) > 0, f"connections per worker: {held}"


def test_a_second_server_on_the_same_port_fails_instead_of_sharing_it(two_workers: ServerProcess, sqlite_url: str):
    second = subprocess.run(
        [sys.executable, "-m", "quantdesk", "serve", "--port", str(two_workers.port), "--workers", "2"],
        env={**os.environ, "QUANTDESK_DATABASE_URL": sqlite_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{two_workers.port}" in second.stderr
    assert "Traceback" not in second.stderr
