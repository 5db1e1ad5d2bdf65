"""GET /metrics in Prometheus' text format.

Request counts and latencies are counted in each process (set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
folder when serving with several workers, and every scrape sums them). Orders, signals and the broker
queue are read from the database at scrape time, so they are the same whichever process answers.
"""

import os

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk import __version__
from quantdesk.accounts.auth import public_read
from quantdesk.api.deps import SessionDep
from quantdesk.core.clock import utcnow
from quantdesk.realtime.hub import Hub
from quantdesk.signals.models import Signal
from quantdesk.signals.worker import queue_state
from quantdesk.trading.models import Order

router = APIRouter(include_in_schema=False)
disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double what Prometheus stores
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter(
    "quantdesk_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "quantdesk_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def database_registry(session: AsyncSession, hub: Hub) -> CollectorRegistry:
    """What the database says now, and this process's open sockets."""
    registry = CollectorRegistry()
    info = Gauge("quantdesk_info", "The running version", ["version"], registry=registry)
    info.labels(__version__).set(1)
    orders = Gauge("quantdesk_orders", "Orders by status", ["status"], registry=registry)
    for status, count in await session.execute(select(Order.status, func.count()).group_by(Order.status)):
        orders.labels(status).set(count)
    signals = Gauge("quantdesk_signals", "Signals by status", ["status"], registry=registry)
    for status, count in await session.execute(select(Signal.status, func.count()).group_by(Signal.status)):
        signals.labels(status).set(count)
    depth, oldest = await queue_state(session)
    Gauge("quantdesk_broker_queue_depth", "Signal orders waiting for a broker worker", registry=registry).set(depth)
    lag = Gauge(
        "quantdesk_broker_worker_lag_seconds", "Age of the oldest signal order still waiting", registry=registry
    )
    lag.set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0)
    sockets = Gauge("quantdesk_websocket_connections", "Open WebSockets in this process", registry=registry)
    sockets.set(hub.size)
    return registry


@router.get("/metrics", dependencies=[Depends(public_read)])
async def metrics(request: Request, session: SessionDep) -> Response:
    """Public like market data: a private server (QUANTDESK_PRIVATE) wants an API key (Prometheus'
    ``authorization`` setting sends it)."""
    now = await database_registry(session, request.app.state.hub)
    body = generate_latest(process_registry()) + generate_latest(now)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
