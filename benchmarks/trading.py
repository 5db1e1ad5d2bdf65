"""Market orders per second through the HTTP API, with p50/p99 latency, on PostgreSQL with 2 server workers.

    .venv/bin/python -m benchmarks.trading [--orders 2000] [--concurrency 16] [--workers 2]

Two runs on one server: every order on one account (each one waits for that account's row lock), and
the orders spread over 50 accounts of 50 users. Each order is a market buy of one unit that fills at once
(a fill, two ledger rows, a position, gems). The clients are benchmarks/loadgen.py's keep-alive
connections, as in benchmarks/signals.py: they share the two cores with the server, and httpx spends
more CPU per request. Target: at least 500 orders/s with p99 under 100 ms.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys

import httpx
import psycopg

from benchmarks import loadgen
from benchmarks.common import print_figures, print_table
from benchmarks.ingest import (
    drop_postgres,
    free_port,
    fresh_postgres,
    libpq_dsn,
    postgres_server_url,
    wait_until_healthy,
)

DATABASE = "quantdesk_bench_trading"


def set_synchronous_commit(value: str) -> None:
    with psycopg.connect(libpq_dsn(postgres_server_url()), autocommit=True) as connection:
        connection.execute(f"ALTER DATABASE {DATABASE} SET synchronous_commit = {value}")


def admin_key(env: dict[str, str]) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "quantdesk", "users", "create", "benchadmin", "--admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.split("(shown once):")[1].split()[0]


async def setup(client: httpx.AsyncClient, traders: int) -> list[tuple[str, int]]:
    """An asset priced at 1 and ``traders`` users, each with a well-funded account: (key, account id)."""
    await client.post("/api/v1/assets", json={"symbol": "BENCH", "asset_class": "crypto", "price": "1"})
    pairs = []
    for i in range(traders):
        key = (await client.post("/api/v1/users", json={"username": f"trader{i}"})).json()["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        body = {"name": "bench", "initial_deposit": "100000000"}
        account = (await client.post("/api/v1/accounts", json=body, headers=headers)).json()["id"]
        pairs.append((key, account))
    return pairs


async def fire(port: int, targets: list[tuple[str, int]], orders: int, concurrency: int) -> dict[str, float]:
    """``orders`` market buys of one unit, spread over ``targets`` in turn, from ``concurrency`` clients."""
    requests = []
    for i in range(orders):
        key, account = targets[i % len(targets)]
        body = {"account_id": account, "symbol": "BENCH", "side": "buy", "quantity": "1"}
        auth = (("Authorization", f"Bearer {key}"),)
        requests.append(loadgen.Request("/api/v1/orders", json.dumps(body).encode(), "application/json", auth))
    load = await loadgen.run_all("127.0.0.1", port, requests, concurrency)
    ordered = sorted(load.latencies_s)
    return {
        "orders_per_s": orders / load.elapsed_s,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "errors": float(orders - load.statuses.get(201, 0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="PostgreSQL's synchronous_commit for the run's database (off: commits do not wait for the disk)",
    )
    args = parser.parse_args()
    url = fresh_postgres(DATABASE)
    set_synchronous_commit(args.synchronous_commit)
    env = {**os.environ, "QUANTDESK_DATABASE_URL": url, "QUANTDESK_LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "-m", "quantdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    key = admin_key(env)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "serve", "--port", str(port), "--workers", str(args.workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=60) as probe:
            wait_until_healthy(probe)

        async def run() -> dict[str, float]:
            async with httpx.AsyncClient(
                base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {key}"}
            ) as admin:
                targets = await setup(admin, 50)
            await fire(port, targets, 200, args.concurrency)  # warm both workers
            one = await fire(port, targets[:1], args.orders, args.concurrency)
            many = await fire(port, targets, args.orders, args.concurrency)
            return {f"one_account_{k}": v for k, v in one.items()} | {f"fifty_accounts_{k}": v for k, v in many.items()}

        figures = asyncio.run(run())
    finally:
        server.terminate()
        server.wait(timeout=20)
        drop_postgres(DATABASE)
    print_table(
        f"market orders over HTTP, PostgreSQL (synchronous_commit {args.synchronous_commit}), {args.workers} workers, "
        f"{args.concurrency} concurrent clients",
        ["accounts", "orders/s", "p50 ms", "p99 ms", "errors", "target"],
        [
            [
                "1",
                *(figures[f"one_account_{k}"] for k in ("orders_per_s", "p50_ms", "p99_ms", "errors")),
                ">= 500/s, p99 < 100 ms",
            ],
            [
                "50",
                *(figures[f"fifty_accounts_{k}"] for k in ("orders_per_s", "p50_ms", "p99_ms", "errors")),
                ">= 500/s, p99 < 100 ms",
            ],
        ],
    )
    print_figures(
        {"orders": args.orders, "concurrency": args.concurrency, "workers": args.workers}
        | {k: round(v, 2) for k, v in figures.items()}
    )


if __name__ == "__main__":
    main()
