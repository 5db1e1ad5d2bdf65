"""The FastAPI application: routers, the error table and the database lifecycle."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from quantdesk import __version__
from quantdesk.accounts import router as accounts_router
from quantdesk.accounts.auth import market_access, research_access
from quantdesk.analytics.router import router as analytics_router
from quantdesk.api import metrics, root
from quantdesk.api.errors import install_error_handlers
from quantdesk.api.limits import BodySizeLimit
from quantdesk.api.observe import RequestContext
from quantdesk.api.openapi import describe_problems
from quantdesk.backtest import sweeps
from quantdesk.backtest.router import router as backtest_router
from quantdesk.backtest.strategy_router import router as strategy_router
from quantdesk.backtest.sweep_router import jobs as sweep_jobs
from quantdesk.backtest.sweep_router import router as sweep_router
from quantdesk.backtest.walkforward_router import router as walkforward_router
from quantdesk.core.config import Settings, get_settings
from quantdesk.core.db import create_engine, create_sessionmaker
from quantdesk.core.group_commit import GroupCommit
from quantdesk.core.logging import configure_logging
from quantdesk.forecast.router import router as forecast_router
from quantdesk.gamification.awards import TRADES_KEY
from quantdesk.gamification.router import router as leaderboard_router
from quantdesk.market.providers.router import router as providers_router
from quantdesk.market.router import router as market_router
from quantdesk.models import load_all_models
from quantdesk.realtime.events import HUB_KEY, OWNERS_KEY
from quantdesk.realtime.hub import Hub
from quantdesk.realtime.listener import listen
from quantdesk.realtime.router import router as realtime_router
from quantdesk.reports.router import router as reports_router
from quantdesk.signals import router as signals
from quantdesk.signals import webhook, worker
from quantdesk.signals.direct import WebhookDirect
from quantdesk.signals.gate import TokenBuckets
from quantdesk.trading import router as trading_router
from quantdesk.trading import service as trading
from quantdesk.web import router as dashboard

SHUTDOWN_GRACE_S = 5.0
DESCRIPTION = """Self-hosted market data, research and paper trading.

Errors are JSON: `{"error": "<code>", "detail": "<what to fix>", "errors": [...]}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application with ``settings`` (default: the process's). What depends on them is read when the
    application starts (its lifespan) or per request, from ``app.state.settings``: one application object
    can be started again with other settings (the test suite does, as building the routes takes longer
    than most tests)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    load_all_models()  # before any mapper is configured: relationships are named by string across domains

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        app.state.webhook_limits = TokenBuckets(settings.webhook_rate_per_s, settings.webhook_burst)
        # SQLite has one writer at a time (and an in-memory database takes no pool size): its default pool.
        pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        engine = create_engine(settings.database_url, **({} if settings.is_sqlite else pool))
        hub = Hub()
        app.state.engine, app.state.hub = engine, hub
        app.state.sessionmaker = create_sessionmaker(engine, info={HUB_KEY: hub, OWNERS_KEY: {}, TRADES_KEY: {}})
        # Orders and webhook signals arriving together are written together: one transaction per batch.
        place = partial(trading.place_keyed_orders, settings=settings)
        app.state.order_desk = GroupCommit(app.state.sessionmaker, place)
        receive = partial(webhook.receive_deliveries, settings=settings, limits=app.state.webhook_limits)
        app.state.signal_desk = GroupCommit(app.state.sessionmaker, receive)
        # Plain tasks, not a task group: the lifespan may be entered and left in different tasks.
        tasks = {asyncio.create_task(sweeps.resume_abandoned(app.state.sessionmaker, settings))}
        if not settings.is_sqlite:
            tasks.add(asyncio.create_task(listen(settings.database_url, hub)))
        stop_worker = asyncio.Event()
        brokers: set[asyncio.Task[None]] = set()
        if settings.broker_worker:
            brokers.add(asyncio.create_task(worker.run(app.state.sessionmaker, settings, hub, stop_worker)))
        try:
            yield
        finally:
            # The broker worker ends its transaction and returns; the others are cancelled.
            stop_worker.set()
            hub.work_waiting.set()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks | brokers, timeout=SHUTDOWN_GRACE_S)  # a sweep in a thread ends its batch
            for task in brokers:
                task.cancel()  # still inside an order after the grace period: the transaction is abandoned
            if brokers:
                await asyncio.wait(brokers, timeout=1.0)
            await engine.dispose()

    # The docs pages' JavaScript and CSS come from the installed package, not a CDN: quantdesk must
    # be usable on a machine without internet access.
    app = FastAPIOffline(title="quantdesk", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=lambda: app.state.settings.max_upload_bytes)
    app.add_middleware(WebhookDirect)  # in front of the routing (and of BodySizeLimit: it has its own limit)
    app.add_middleware(RequestContext)  # added last: the outermost, so it times and logs everything
    install_error_handlers(app)
    # FastAPI tries the included routers in order, each route twice: the hot paths come first, which
    # saves most of a millisecond per request over being last (the webhook's POST does not even reach
    # the routing: WebhookDirect).
    app.include_router(signals.webhooks)
    app.include_router(trading_router.orders)
    app.include_router(root.router)
    app.include_router(metrics.router)
    market = [Depends(market_access)]
    research = [Depends(research_access)]
    app.include_router(market_router, dependencies=market)
    app.include_router(analytics_router, dependencies=market)
    app.include_router(providers_router, dependencies=market)
    app.include_router(backtest_router, dependencies=research)
    app.include_router(strategy_router, dependencies=research)
    app.include_router(sweep_router, dependencies=research)
    app.include_router(sweep_jobs, dependencies=research)
    app.include_router(walkforward_router, dependencies=research)
    app.include_router(forecast_router, dependencies=research)
    app.include_router(reports_router, dependencies=research)
    for router in (accounts_router.users, accounts_router.keys, accounts_router.accounts):
        app.include_router(router)
    for router in (trading_router.portfolios, trading_router.assets, trading_router.ticks):
        app.include_router(router)
    app.include_router(leaderboard_router)
    for router in (signals.router, signals.webhook_tokens, signals.trading_analytics):
        app.include_router(router)
    app.include_router(realtime_router)
    dashboard.install(app)
    describe_problems(app)
    return app


def served_app() -> FastAPI:
    """The application as ``quantdesk serve`` runs it in each worker process.

    Start-up leaves a few hundred thousand objects (the imported libraries) that live as long as the
    process. Frozen, the cyclic garbage collector no longer scans them: a full collection then takes
    milliseconds instead of the ~200 ms during which every request of the process waits."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
