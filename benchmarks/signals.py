"""Signals through the webhook on PostgreSQL with 2 server workers, and a bare FastAPI INSERT beside it.

    .venv/bin/python -m benchmarks.signals [--seconds 15] [--connections 32] [--workers 2] [--receive-only]

A load generator on loopback keeps ``--connections`` keep-alive connections posting distinct TradingView
JSON signals (each with its own id) to one webhook for ``--seconds``; a WebSocket client of the account
owner records every fill event. Afterwards the database says when each acknowledged signal was received
and filled, whether any was lost or filled twice, and how many the broker workers executed per second
(from the first receipt to the last fill). The per-token rate limit is off for the run (one
token takes the whole load). The peer is the least a receiver can do: a FastAPI endpoint with one INSERT
(benchmarks/bare_insert.py), served the same way and driven by the same generator in the same run.

Targets: accepted signals/s at least half the bare endpoint's requests/s, answer p99 under 50 ms,
fill-to-WebSocket p99 under 50 ms, no lost or duplicated orders. Last, the same server is driven for a few
seconds at an unknown token: a 404 after routing, the middleware, a session and one query, which is what
quantdesk costs per request before a signal is stored.

``--receive-only`` runs the servers without their broker workers: what receiving a signal costs alone
(each acknowledged signal is checked to be stored with its order, waiting), next to the same peer.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from websockets.asyncio.client import connect

from benchmarks import loadgen
from benchmarks.common import cpu_used_s, postgres_cpu_s, print_figures, print_table, tree_cpu_s
from benchmarks.ingest import drop_postgres, free_port, fresh_postgres, libpq_dsn, wait_until_healthy
from benchmarks.trading import admin_key

DATABASE, BARE_DATABASE = "quantdesk_bench_signals", "quantdesk_bench_bare"
WARM_UP_S = 2.0
FLOOR_S = 5.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    # BENCH_SERVER_LOG=path keeps the servers' output (they are quiet otherwise).
    log_path = os.environ.get("BENCH_SERVER_LOG")
    log = Path(log_path).open("ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the server's lifetime
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as probe:
        wait_until_healthy(probe, 60)
    return server


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


def signal_body(n: int) -> bytes:
    return json.dumps({"action": "buy", "ticker": "BENCH", "contracts": "1", "id": f"bench-{n}"}).encode()


async def prepare(base_url: str, admin: str) -> tuple[str, str]:
    """An asset at 1, a funded trader and their webhook: (the trader's key, the webhook path)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as http:
        await http.post("/api/v1/assets", json={"symbol": "BENCH", "asset_class": "crypto", "price": "1"})
        key = (await http.post("/api/v1/users", json={"username": "tvtrader"})).json()["api_key"]
        trader = {"Authorization": f"Bearer {key}"}
        body = {"name": "tv", "initial_deposit": "1000000000"}
        account = (await http.post("/api/v1/accounts", json=body, headers=trader)).json()["id"]
        url = (await http.post(f"/api/v1/accounts/{account}/webhooks", headers=trader)).json()["url"]
    return key, "/webhooks/" + url.rsplit("/", 1)[1]


async def record_fills(socket_url: str) -> None:
    """The listening client, run in a process of its own (``--record-fills URL``) so that the load
    generator never starves it: prints ``order_id seconds`` from each fill to its event arriving."""
    async with connect(socket_url, max_size=None) as socket:
        await socket.recv()
        await socket.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        await socket.recv()
        print("ready", flush=True)
        async for raw in socket:
            message = json.loads(raw)
            if message["stream"] == "trade_updates" and message["data"]["event"] == "fill":
                filled_at = datetime.fromisoformat(message["data"]["timestamp"]).timestamp()
                print(message["data"]["order"]["id"], time.time() - filled_at, flush=True)
    print("closed", flush=True)  # the server dropped this socket


def start_recorder(socket_url: str, output: Path) -> subprocess.Popen[bytes]:
    handle = output.open("wb")
    recorder = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.signals", "--record-fills", socket_url], stdout=handle
    )
    deadline = time.monotonic() + 60
    while b"ready" not in output.read_bytes():
        assert recorder.poll() is None, "the WebSocket recorder exited"
        assert time.monotonic() < deadline, "the WebSocket recorder did not start"
        time.sleep(0.05)
    return recorder


def recorded(output: Path) -> tuple[dict[int, float], bool]:
    fills, dropped = {}, False
    for line in output.read_text().splitlines():
        if line == "closed":
            dropped = True
        elif line != "ready":
            order_id, seconds = line.split()
            fills[int(order_id)] = float(seconds)
    return fills, dropped


def orders_of(url: str, signal_ids: list[int]) -> dict[int, int]:
    """The order each signal placed, by signal id."""
    with psycopg.connect(libpq_dsn(url)) as connection:
        rows = connection.execute(
            "SELECT id, order_id FROM signals WHERE id = ANY(%s) AND order_id IS NOT NULL", (signal_ids,)
        ).fetchall()
    return {int(signal_id): int(order_id) for signal_id, order_id in rows}


def settle(url: str, signal_ids: list[int], timeout_s: float = 300.0) -> float:
    """Seconds until no acknowledged signal is pending any more."""
    started = time.perf_counter()
    with psycopg.connect(libpq_dsn(url)) as connection:
        while time.perf_counter() - started < timeout_s:
            pending = connection.execute(
                "SELECT count(*) FROM signals WHERE status = 'pending' AND id = ANY(%s)", (signal_ids,)
            ).fetchone()
            connection.commit()
            if pending is not None and pending[0] == 0:
                break
            time.sleep(0.2)
    return time.perf_counter() - started


def audit(url: str, signal_ids: list[int]) -> dict[str, float]:
    """Lost and duplicated orders, and signal-to-fill latencies, from the database."""
    with psycopg.connect(libpq_dsn(url)) as connection:
        rows = connection.execute(
            "SELECT s.id, s.status, EXTRACT(EPOCH FROM (min(f.at) - s.received_at)), count(f.id) "
            "FROM signals s LEFT JOIN fills f ON f.order_id = s.order_id WHERE s.id = ANY(%s) GROUP BY s.id",
            (signal_ids,),
        ).fetchall()
        orders = connection.execute(
            "SELECT count(*) FROM orders o JOIN signals s ON s.order_id = o.id "
            "WHERE s.id = ANY(%s) AND o.leg = 'entry'",
            (signal_ids,),
        ).fetchone()
        # The broker workers' pace: executed signals over the time from the first receipt to the last fill.
        span = connection.execute(
            "SELECT EXTRACT(EPOCH FROM (max(f.at) - min(s.received_at))) "
            "FROM signals s JOIN fills f ON f.order_id = s.order_id WHERE s.id = ANY(%s)",
            (signal_ids,),
        ).fetchone()
    to_fill = [float(seconds) for _, _, seconds, _ in rows if seconds is not None]
    span_s = float(span[0]) if span is not None and span[0] is not None else float("nan")
    return {
        "worker_signals_per_s": len(to_fill) / span_s,
        "lost": sum(1 for _, status, _, fills in rows if status != "executed" or fills == 0)
        + (len(signal_ids) - len(rows)),
        "duplicated": sum(fills - 1 for *_, fills in rows if fills > 1) + max(0, (orders or (0,))[0] - len(rows)),
        "signal_to_fill_p50_ms": percentile(to_fill, 0.50) * 1000,
        "signal_to_fill_p99_ms": percentile(to_fill, 0.99) * 1000,
    }


def database_sessions(url: str) -> int:
    """PostgreSQL sessions opened on the database so far: a pool too small for the load opens new ones."""
    with psycopg.connect(libpq_dsn(url)) as connection:
        found = connection.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(found[0]) if found else 0


def quantdesk_run(args: argparse.Namespace) -> dict[str, float]:
    url = fresh_postgres(DATABASE)
    env = {
        **os.environ,
        "QUANTDESK_DATABASE_URL": url,
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_WEBHOOK_RATE_PER_S": "0",
        "QUANTDESK_BROKER_WORKER": "false" if args.receive_only else "true",
    }
    subprocess.run([sys.executable, "-m", "quantdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    admin = admin_key(env)
    port = free_port()
    command = [sys.executable, "-m", "quantdesk", "serve", "--port", str(port), "--workers", str(args.workers)]
    server = start(command, env, port)
    try:
        drive = _receive_only if args.receive_only else _drive_quantdesk
        return asyncio.run(drive(args, url, port, admin, server.pid))
    finally:
        stop(server)
        drop_postgres(DATABASE)


@dataclass
class Metered:
    """The CPU the server, PostgreSQL and this process (the load generator) spent during a load."""

    load: loadgen.Load
    server_cpu_s: float
    postgres_cpu_s: float
    generator_cpu_s: float

    def figures(self, prefix: str, per: str) -> dict[str, float]:
        elapsed, accepted = self.load.elapsed_s, max(1, self.load.accepted)
        return {
            f"{prefix}server_cpu_ms_per_{per}": self.server_cpu_s / accepted * 1000,
            f"{prefix}server_cores_busy": self.server_cpu_s / elapsed,
            f"{prefix}postgres_cores_busy": self.postgres_cpu_s / elapsed,
            f"{prefix}generator_cores_busy": self.generator_cpu_s / elapsed,
        }


async def metered(server_pid: int, drive: Awaitable[loadgen.Load]) -> Metered:
    server, database, generator = tree_cpu_s(server_pid), postgres_cpu_s(), time.process_time()
    load = await drive
    return Metered(
        load,
        cpu_used_s(server, tree_cpu_s(server_pid)),
        cpu_used_s(database, postgres_cpu_s()),
        time.process_time() - generator,
    )


async def _drive_quantdesk(
    args: argparse.Namespace, url: str, port: int, admin: str, server_pid: int
) -> dict[str, float]:
    key, path = await prepare(f"http://127.0.0.1:{port}", admin)
    output = Path(tempfile.mkdtemp()) / "fills.txt"
    recorder = start_recorder(f"ws://127.0.0.1:{port}/ws?token={key}", output)
    offset = 10_000_000  # warm-up signals get ids of their own
    warm = await loadgen.run("127.0.0.1", port, path, lambda n: signal_body(offset + n), args.connections, WARM_UP_S)
    settle(url, [json.loads(body)["signal_id"] for body in warm.bodies])
    meter = await metered(server_pid, loadgen.run("127.0.0.1", port, path, signal_body, args.connections, args.seconds))
    load = meter.load
    acknowledged = [json.loads(body)["signal_id"] for body in load.bodies]
    drain_s = await asyncio.to_thread(settle, url, acknowledged)
    await asyncio.sleep(1.0)  # the last fill events on their way
    recorder.terminate()
    recorder.wait(10)
    fills, dropped = recorded(output)
    # What this server answers at the least: routing, middleware, a session and one query (a 404).
    sessions_before = database_sessions(url)
    floor = await loadgen.run("127.0.0.1", port, "/webhooks/wh_unknown", signal_body, args.connections, FLOOR_S)
    floor_sessions = database_sessions(url) - sessions_before - 1  # not the counting connection itself
    opened = orders_of(url, acknowledged)
    to_socket = [fills[opened[signal_id]] for signal_id in acknowledged if opened.get(signal_id) in fills]
    return {
        **answered(load),
        "acknowledged": len(acknowledged),
        "drain_after_load_s": drain_s,
        "fill_to_ws_p50_ms": percentile(to_socket, 0.50) * 1000,
        "fill_to_ws_p99_ms": percentile(to_socket, 0.99) * 1000,
        "fill_events_missing": len(acknowledged) - len(to_socket),
        "floor_requests_per_s": len(floor.latencies_s) / floor.elapsed_s,
        "floor_p50_ms": statistics.median(floor.latencies_s) * 1000,
        "floor_p99_ms": percentile(floor.latencies_s, 0.99) * 1000,
        "floor_new_db_sessions": floor_sessions,
        "socket_dropped": int(dropped),
        **meter.figures("", "signal"),
        **audit(url, acknowledged),
    }


async def _receive_only(args: argparse.Namespace, url: str, port: int, admin: str, server_pid: int) -> dict[str, float]:
    _, path = await prepare(f"http://127.0.0.1:{port}", admin)
    offset = 10_000_000  # warm-up signals get ids of their own
    await loadgen.run("127.0.0.1", port, path, lambda n: signal_body(offset + n), args.connections, WARM_UP_S)
    meter = await metered(server_pid, loadgen.run("127.0.0.1", port, path, signal_body, args.connections, args.seconds))
    acknowledged = [json.loads(body)["signal_id"] for body in meter.load.bodies]
    return {
        **answered(meter.load),
        "acknowledged": len(acknowledged),
        "lost": len(acknowledged) - stored_waiting(url, acknowledged),
        **meter.figures("", "signal"),
    }


def answered(load: loadgen.Load) -> dict[str, float]:
    return {
        "accepted_per_s": load.accepted / load.elapsed_s,
        "answer_p50_ms": statistics.median(load.latencies_s) * 1000,
        "answer_p99_ms": percentile(load.latencies_s, 0.99) * 1000,
        "non_2xx": sum(count for status, count in load.statuses.items() if status >= 300) + load.errors,
    }


def stored_waiting(url: str, signal_ids: list[int]) -> int:
    """How many of the signals are stored pending, with their order waiting for a broker worker."""
    with psycopg.connect(libpq_dsn(url)) as connection:
        found = connection.execute(
            "SELECT count(*) FROM signals s JOIN orders o ON o.id = s.order_id "
            "WHERE s.id = ANY(%s) AND s.status = 'pending' AND o.status = 'new'",
            (signal_ids,),
        ).fetchone()
    return int(found[0]) if found else 0


def bare_run(args: argparse.Namespace) -> dict[str, float]:
    url = fresh_postgres(BARE_DATABASE)
    dsn = libpq_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE bare_signals (id bigserial PRIMARY KEY, body text NOT NULL)")
    port = free_port()
    env = {**os.environ, "BARE_INSERT_DSN": dsn}
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.bare_insert:app", "--port", str(port),
        "--workers", str(args.workers), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = start(command, env, port)
    try:

        async def drive() -> Metered:
            await loadgen.run("127.0.0.1", port, "/insert", signal_body, args.connections, WARM_UP_S)
            insert = loadgen.run("127.0.0.1", port, "/insert", signal_body, args.connections, args.seconds)
            return await metered(server.pid, insert)

        meter = asyncio.run(drive())
        load = meter.load
    finally:
        stop(server)
        drop_postgres(BARE_DATABASE)
    return {
        "bare_requests_per_s": load.accepted / load.elapsed_s,
        "bare_p50_ms": statistics.median(load.latencies_s) * 1000,
        "bare_p99_ms": percentile(load.latencies_s, 0.99) * 1000,
        **meter.figures("bare_", "request"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--receive-only", action="store_true", help="the servers without their broker workers")
    parser.add_argument("--record-fills", metavar="WS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record_fills:
        asyncio.run(record_fills(args.record_fills))
        return
    figures = bare_run(args) | quantdesk_run(args)
    figures["ratio_vs_bare"] = figures["accepted_per_s"] / figures["bare_requests_per_s"]
    if args.receive_only:
        print_receiving(args, figures)
        return
    print_table(
        f"webhook signals on PostgreSQL, {args.workers} server workers, {args.connections} connections, "
        f"{args.seconds:g} s",
        ["endpoint", "requests/s", "p50 ms", "p99 ms", "target"],
        [
            [
                "bare FastAPI + 1 INSERT",
                figures["bare_requests_per_s"],
                figures["bare_p50_ms"],
                figures["bare_p99_ms"],
                "peer",
            ],
            [
                "POST /webhooks/{token}",
                figures["accepted_per_s"],
                figures["answer_p50_ms"],
                figures["answer_p99_ms"],
                ">= 50% of the peer, p99 < 50 ms",
            ],
            [
                "the same server, unknown token (404)",
                figures["floor_requests_per_s"],
                figures["floor_p50_ms"],
                figures["floor_p99_ms"],
                "its floor: no signal stored",
            ],
        ],
    )
    print_table(
        "after the answer",
        ["latency", "p50 ms", "p99 ms", "target"],
        [
            ["signal received -> filled", figures["signal_to_fill_p50_ms"], figures["signal_to_fill_p99_ms"], "-"],
            ["filled -> WebSocket event", figures["fill_to_ws_p50_ms"], figures["fill_to_ws_p99_ms"], "p99 < 50 ms"],
        ],
    )
    print_table(
        "every acknowledged signal",
        ["acknowledged", "lost", "duplicated", "missing fill events", "non-2xx", "drain after load s",
         "executed signals/s", "new db sessions in the floor run"],
        [[figures["acknowledged"], figures["lost"], figures["duplicated"], figures["fill_events_missing"],
          figures["non_2xx"], figures["drain_after_load_s"], figures["worker_signals_per_s"],
          figures["floor_new_db_sessions"]]],
    )  # fmt: skip
    print_table(
        "CPU during the load (server: its workers and supervisor; the generator: this process)",
        ["endpoint", "server ms per answer", "server cores", "PostgreSQL cores", "generator cores"],
        [
            ["bare FastAPI + 1 INSERT", figures["bare_server_cpu_ms_per_request"], figures["bare_server_cores_busy"],
             figures["bare_postgres_cores_busy"], figures["bare_generator_cores_busy"]],
            ["POST /webhooks/{token} (with the executions meanwhile)", figures["server_cpu_ms_per_signal"],
             figures["server_cores_busy"], figures["postgres_cores_busy"], figures["generator_cores_busy"]],
        ],
    )  # fmt: skip
    print_closing(args, figures)


def print_receiving(args: argparse.Namespace, figures: dict[str, float]) -> None:
    print_table(
        f"receiving only (no broker workers), PostgreSQL, {args.workers} server workers, "
        f"{args.connections} connections, {args.seconds:g} s",
        ["endpoint", "requests/s", "p50 ms", "p99 ms", "server ms per answer", "server cores", "PostgreSQL cores"],
        [
            ["bare FastAPI + 1 INSERT", figures["bare_requests_per_s"], figures["bare_p50_ms"], figures["bare_p99_ms"],
             figures["bare_server_cpu_ms_per_request"], figures["bare_server_cores_busy"],
             figures["bare_postgres_cores_busy"]],
            ["POST /webhooks/{token}", figures["accepted_per_s"], figures["answer_p50_ms"], figures["answer_p99_ms"],
             figures["server_cpu_ms_per_signal"], figures["server_cores_busy"], figures["postgres_cores_busy"]],
        ],
    )  # fmt: skip
    print_table(
        "every acknowledged signal",
        ["acknowledged", "not stored waiting", "non-2xx"],
        [[figures["acknowledged"], figures["lost"], figures["non_2xx"]]],
    )
    print_closing(args, figures)


def print_closing(args: argparse.Namespace, figures: dict[str, float]) -> None:
    run = {"seconds": args.seconds, "connections": args.connections, "workers": args.workers}
    print_figures(
        run
        | {"receive_only": args.receive_only}
        | {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    )


if __name__ == "__main__":
    main()
