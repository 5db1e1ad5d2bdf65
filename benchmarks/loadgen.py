"""A small HTTP/1.1 load generator: N keep-alive connections posting as fast as answers come back.

Hand-written on asyncio streams because a full client (httpx) spends more CPU per request than the
servers measured here, and this machine's two cores are shared by the load and the servers.
"""

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Load:
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)  # the answers of the 2xx requests
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, request: Request
) -> tuple[int, bytes]:
    extra = "".join(f"{name}: {value}\r\n" for name, value in request.headers)
    head = (
        f"POST {request.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {request.content_type}\r\n"
        f"Content-Length: {len(request.body)}\r\n{extra}\r\n"
    )
    writer.write(head.encode() + request.body)
    answer = await reader.readuntil(b"\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    length = 0
    for line in answer.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, request: Request, load: Load
) -> bool:
    """One request and its answer, recorded in ``load``; False when the connection failed."""
    started = time.perf_counter()
    try:
        status, answer = await _post(reader, writer, host, request)
    except (OSError, asyncio.IncompleteReadError):
        load.errors += 1
        return False
    load.latencies_s.append(time.perf_counter() - started)
    load.statuses[status] = load.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        load.bodies.append(answer)
    return True


async def _drive(host: str, port: int, connections: int, next_request: Callable[[], Request | None]) -> Load:
    """``connections`` keep-alive connections send ``next_request()`` one after another until it is None."""
    load = Load()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (request := next_request()) is not None:
                if not await _exchange(reader, writer, f"{host}:{port}", request, load):
                    return
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    load.elapsed_s = time.perf_counter() - started
    return load


async def run(host: str, port: int, path: str, body: Callable[[int], bytes], connections: int, seconds: float) -> Load:
    """``connections`` connections post ``body(n)`` to ``path`` until ``seconds`` have passed."""
    numbers = itertools.count(1)
    deadline = time.perf_counter() + seconds

    def next_request() -> Request | None:
        return Request(path, body(next(numbers))) if time.perf_counter() < deadline else None

    return await _drive(host, port, connections, next_request)


async def run_all(host: str, port: int, requests: Sequence[Request], connections: int) -> Load:
    """``connections`` connections share ``requests`` until every one has been sent once."""
    pending = iter(requests)
    return await _drive(host, port, connections, lambda: next(pending, None))
