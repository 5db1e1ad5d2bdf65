"""Soak: minutes of mixed traffic on one server, and what it does to the server's memory and answers.

    .venv/bin/python -m benchmarks.soak [--seconds 180] [--users 16] [--workers 2]

A quantdesk server (``--workers`` processes) on a fresh PostgreSQL database holds the demo's daily bars.
``--users`` traders each run one loop on loopback for ``--seconds``, choosing every request by weight:
reads (bars, statistics, portfolio, orders, leaderboard), market orders (a buy, then a sell of what was
bought), TradingView signals to their webhook (a buy, then a sell that closes it), and an admin's price
ticks. Every trader also keeps a WebSocket open and counts the events it receives. The server processes'
resident memory is sampled every 5 s after a warm-up.

Afterwards: every signal must have left the queue, every account's cash must equal the sum of its ledger,
and every socket must still be open. An error is a 5xx, a refused connection, a request that failed, an
unexpected 4xx, a closed socket, a signal stuck in the queue or a ledger that does not balance.
No peer is named for this run: it measures quantdesk against itself over time.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks.common import print_figures, print_table
from benchmarks.ingest import drop_postgres, free_port, fresh_postgres, libpq_dsn
from benchmarks.signals import percentile, start, stop
from benchmarks.trading import admin_key

DATABASE = "quantdesk_bench_soak"
WARM_UP_S = 15.0
SAMPLE_EVERY_S = 5.0
# Request kinds and their weights in each trader's loop.
MIX = {"read": 60, "order": 18, "signal": 17, "tick": 5}
READS = (
    "/api/v1/instruments/ACME/bars?limit=100&order=desc",
    "/api/v1/instruments/GLOBEX/stats?start=2025-01-01",
    "/api/v1/portfolio",
    "/api/v1/orders?limit=20",
    "/api/v1/leaderboard?top=10",
    "/api/v1/signals?limit=20",
)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unexpected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    socket_events: int = 0
    sockets_closed: int = 0
    signal_ids: list[int] = field(default_factory=list)

    def note(self, kind: str, seconds: float, status: int | str, expected: tuple[int, ...]) -> None:
        self.latencies[kind].append(seconds)
        if status not in expected:
            self.unexpected[f"{kind} {status}"] += 1


@dataclass
class Trader:
    key: str
    account: int
    webhook: str
    orders: int = 0
    signals: int = 0


def seed(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "quantdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "quantdesk", "demo", "--no-minutes"], env=env, check=True, capture_output=True
    )


async def traders(base_url: str, admin: str, count: int) -> list[Trader]:
    made = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as http:
        for i in range(count):
            key = (await http.post("/api/v1/users", json={"username": f"soak{i}"})).json()["api_key"]
            own = {"Authorization": f"Bearer {key}"}
            body = {"name": "soak", "initial_deposit": "10000000"}
            account = (await http.post("/api/v1/accounts", json=body, headers=own)).json()["id"]
            url = (await http.post(f"/api/v1/accounts/{account}/webhooks", headers=own)).json()["url"]
            made.append(Trader(key, account, "/webhooks/" + url.rsplit("/", 1)[1]))
    return made


async def trade_loop(base_url: str, trader: Trader, admin: str, tally: Tally, until: float) -> None:
    own = {"Authorization": f"Bearer {trader.key}"}
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        while time.monotonic() < until:
            kind = random.choices(kinds, weights)[0]
            started = time.perf_counter()
            status: int | str
            try:
                status = await _one(http, kind, trader, own, admin, tally)
            except httpx.HTTPError as failure:
                status = type(failure).__name__
            tally.note(kind, time.perf_counter() - started, status, (200, 201, 202))


async def _one(
    http: httpx.AsyncClient, kind: str, trader: Trader, own: dict[str, str], admin: str, tally: Tally
) -> int:
    if kind == "read":
        return (await http.get(random.choice(READS), headers=own)).status_code
    if kind == "order":
        side = "sell" if trader.orders % 2 else "buy"  # a sell always follows its buy
        trader.orders += 1
        body = {"account_id": trader.account, "symbol": "ACME", "side": side, "type": "market", "quantity": "1"}
        return (await http.post("/api/v1/orders", json=body, headers=own)).status_code
    if kind == "signal":
        action = "sell" if trader.signals % 2 else "buy"  # the sell closes the buy before it
        trader.signals += 1
        message = {
            "action": action,
            "ticker": "GLOBEX",
            "contracts": "1",
            "id": f"soak-{trader.account}-{trader.signals}",
        }
        answer = await http.post(trader.webhook, content=json.dumps(message))
        if answer.status_code == 202:
            tally.signal_ids.append(answer.json()["signal_id"])
        return answer.status_code
    price = f"{random.uniform(60, 80):.2f}"
    ticked = await http.post(
        "/api/v1/instruments/ACME/ticks", json={"price": price}, headers={"Authorization": f"Bearer {admin}"}
    )
    return ticked.status_code


async def listen(socket_url: str, tally: Tally, until: float) -> None:
    try:
        async with connect(socket_url) as socket:
            while time.monotonic() < until:
                try:
                    await asyncio.wait_for(socket.recv(), max(0.1, until - time.monotonic()))
                    tally.socket_events += 1
                except TimeoutError:
                    continue
    except (ConnectionClosed, OSError):
        tally.sockets_closed += 1


def server_rss_mb(root: int) -> float:
    """Resident memory of the server and its worker processes."""
    pids = [root, *_children(root)]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, text):
            found += [child, *_children(child)]
    return found


async def sample_memory(root: int, samples: list[tuple[float, float]], until: float) -> None:
    while time.monotonic() < until:
        samples.append((time.monotonic(), server_rss_mb(root)))
        await asyncio.sleep(SAMPLE_EVERY_S)


def count(connection: psycopg.Connection[tuple[int]], sql: str) -> int:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def settle_and_audit(url: str, timeout_s: float = 120.0) -> dict[str, int]:
    """Waits (the server still running) until the broker queue is empty, then checks the books."""
    dsn = libpq_dsn(url)
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn) as connection:
        waiting = 0
        while time.monotonic() < deadline:
            waiting = count(connection, "SELECT count(*) FROM orders WHERE status = 'new' AND source = 'signal'")
            pending = count(connection, "SELECT count(*) FROM signals WHERE status = 'pending'")
            connection.commit()
            if waiting == 0 and pending == 0:
                break
            time.sleep(0.5)
        unbalanced = count(
            connection,
            "SELECT count(*) FROM accounts a WHERE a.cash <> "
            "(SELECT coalesce(sum(amount), 0) FROM ledger l WHERE l.account_id = a.id)",
        )
        duplicates = count(
            connection, "SELECT count(*) FROM (SELECT order_id FROM fills GROUP BY order_id HAVING count(*) > 1) d"
        )
    return {"signals_stuck": waiting + pending, "ledgers_unbalanced": unbalanced, "orders_filled_twice": duplicates}


async def drive(args: argparse.Namespace, server: subprocess.Popen[bytes], port: int, admin: str) -> dict[str, float]:
    base = f"http://127.0.0.1:{port}"
    crowd = await traders(base, admin, args.users)
    tally = Tally()
    started = time.monotonic()
    until = started + WARM_UP_S + args.seconds
    samples: list[tuple[float, float]] = []
    work = [trade_loop(base, t, admin, tally, until) for t in crowd]
    sockets = [listen(f"ws://127.0.0.1:{port}/ws?token={t.key}", tally, until) for t in crowd]
    await asyncio.gather(*work, *sockets, sample_memory(server.pid, samples, until))
    elapsed = time.monotonic() - started
    steady = [mb for at, mb in samples if at >= started + WARM_UP_S]
    requests = sum(len(v) for v in tally.latencies.values())
    everything = [s for v in tally.latencies.values() for s in v]
    figures: dict[str, float] = {
        "soak_duration_s": round(elapsed, 1),
        "users": args.users,
        "server_workers": args.workers,
        "requests": requests,
        "throughput_req_per_s": requests / elapsed,
        "p50_ms": percentile(everything, 0.50) * 1000,
        "p99_ms": percentile(everything, 0.99) * 1000,
    }
    for kind, values in sorted(tally.latencies.items()):
        figures[f"{kind}_requests"] = len(values)
        figures[f"{kind}_p99_ms"] = percentile(values, 0.99) * 1000
    figures["ws_events_received"] = tally.socket_events
    figures["ws_sockets_closed"] = tally.sockets_closed
    figures["signals_acknowledged"] = len(tally.signal_ids)
    figures["rss_after_warm_up_mb"] = steady[0] if steady else float("nan")
    figures["rss_end_mb"] = steady[-1] if steady else float("nan")
    figures["rss_growth_mb"] = figures["rss_end_mb"] - figures["rss_after_warm_up_mb"]
    figures["rss_peak_mb"] = max(steady) if steady else float("nan")
    figures["unexpected_answers"] = sum(tally.unexpected.values())
    for label, count in sorted(tally.unexpected.items()):
        print(f"unexpected: {label} x{count}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    url = fresh_postgres(DATABASE)
    env = {
        **os.environ,
        "QUANTDESK_DATABASE_URL": url,
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_WEBHOOK_RATE_PER_S": "0",
    }
    try:
        seed(env)
        admin = admin_key(env)
        port = free_port()
        command = [sys.executable, "-m", "quantdesk", "serve", "--port", str(port), "--workers", str(args.workers)]
        server = start(command, env, port)
        try:
            figures = asyncio.run(drive(args, server, port, admin))
            drain_started = time.monotonic()
            figures.update(settle_and_audit(url))
            figures["queue_drain_after_load_s"] = time.monotonic() - drain_started
        finally:
            stop(server)
    finally:
        drop_postgres(DATABASE)
    figures["errors"] = (
        figures["unexpected_answers"]
        + figures["ws_sockets_closed"]
        + figures["signals_stuck"]
        + figures["ledgers_unbalanced"]
        + figures["orders_filled_twice"]
    )
    rows = [[name, value] for name, value in figures.items()]
    print_table(
        f"soak: {args.seconds:.0f} s of mixed traffic, {args.users} traders, {args.workers} workers, PostgreSQL",
        ["figure", "value"],
        rows,
    )
    print_figures(figures)


if __name__ == "__main__":
    main()
