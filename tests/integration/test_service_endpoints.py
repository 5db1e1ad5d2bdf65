"""/health, the index, the OpenAPI document and the error table."""

import gc
import inspect
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from quantdesk.api.app import create_app, served_app
from quantdesk.core import migrate
from quantdesk.core.config import Settings

EXPECTED_PATHS = {
    "/health",
    "/",
    "/api/v1/instruments",
    "/api/v1/instruments/{symbol}",
    "/api/v1/instruments/{symbol}/bars",
    "/api/v1/instruments/{symbol}/bars/csv",
    "/api/v1/providers",
    "/api/v1/providers/alphavantage/fetch",
    "/api/v1/providers/coingecko/fetch",
    "/api/v1/instruments/{symbol}/stats",
    "/api/v1/instruments/{symbol}/enriched",
    "/api/v1/instruments/{symbol}/chart.png",
    "/api/v1/backtests",
    "/api/v1/backtests/{backtest_id}",
    "/api/v1/backtests/{backtest_id}/equity.png",
    "/api/v1/sweeps",
    "/api/v1/sweeps/{sweep_id}",
    "/api/v1/sweeps/{sweep_id}/heatmap.png",
}


async def test_health_reports_database_and_revision(client: httpx.AsyncClient, database_url: str):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["revision"] == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert body["database"]["dialect"] == ("postgresql" if "postgresql" in database_url else "sqlite")


async def test_health_is_503_when_the_database_is_unreachable():
    # Nothing listens on port 1. (A SQLite file in a missing folder fails too, but leaves a close
    # queued on aiosqlite's worker thread that can outlive the test's event loop.)
    app = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/none", _env_file=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/health")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False


ORDER = {"account_id": 1, "symbol": "ACME", "side": "buy", "quantity": "1"}  # valid: it must reach the database


async def test_requests_while_the_database_is_unreachable_are_503_to_retry_not_500():
    """A 500 says "bug"; a database that is down or restarting is a 503 with Retry-After (and TradingView
    resends an alert answered 5xx, which is right: nothing was stored)."""
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/none", broker_worker=False, _env_file=None)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = [
                await http.get("/api/v1/instruments"),
                await http.post("/webhooks/wh_anything", content=b"BUY EURUSD"),
                await http.post("/api/v1/orders", json=ORDER, headers={"Authorization": "Bearer qd_some_key"}),
            ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "database_unavailable"
        assert "ConnectionRefusedError" in answer.json()["detail"]
        assert answer.headers["retry-after"] == "5"


async def test_index_links_to_docs_and_resources(client: httpx.AsyncClient):
    links = (await client.get("/")).json()["links"]
    assert links["docs"].endswith("/docs")
    assert links["instruments"].endswith("/api/v1/instruments")


async def test_openapi_lists_every_market_data_endpoint(client: httpx.AsyncClient):
    assert (await client.get("/docs")).status_code == 200
    paths = set((await client.get("/openapi.json")).json()["paths"])
    assert paths >= EXPECTED_PATHS


async def test_docs_page_works_offline(client: httpx.AsyncClient):
    page = (await client.get("/docs")).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    assert all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert (await client.get(asset)).status_code == 200, asset


async def test_unknown_route_and_method_get_json_errors(client: httpx.AsyncClient):
    missing = await client.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "detail": "no such endpoint GET /api/v1/nothing; see /docs for the API",
    }
    wrong = await client.put("/api/v1/instruments")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


async def test_malformed_json_is_a_422_that_names_the_problem(client: httpx.AsyncClient):
    response = await client.post(
        "/api/v1/instruments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"
    assert "JSON" in response.json()["detail"]


async def test_an_unexpected_error_is_a_500_without_a_stack_trace(settings: Settings, engine, caplog):
    app = create_app(settings)
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.include_router(boom)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text  # the operator still gets the trace


async def test_a_nul_character_in_any_text_is_refused_alike_on_both_databases(client: httpx.AsyncClient):
    """PostgreSQL cannot store NUL in text; whatever field brings it, the answer is a 422 (schemathesis
    found a query parameter that reached the database), and SQLite refuses what PostgreSQL refuses."""
    answers = [
        await client.get("/api/v1/instruments", params={"asset_class": "stock\x00"}),
        await client.get("/api/v1/instruments/AC%00ME"),
        await client.post("/api/v1/instruments", json={"symbol": "NULTEST", "name": "a\u0000b"}),
        await client.post("/api/v1/accounts", json={"name": "paper\u0000", "initial_deposit": "10"}),
    ]
    assert [answer.status_code for answer in answers] == [422, 422, 422, 422]
    assert {answer.json()["detail"] for answer in answers} == {
        "some text in the request holds a NUL character (code 0); remove it"
    }
    assert (await client.get("/api/v1/instruments/NULTEST")).status_code == 404  # nothing was stored
    assert (await client.get("/api/v1/accounts")).json() == []
    assert (await client.post("/api/v1/instruments", json={"symbol": "NULTEST", "name": "ab"})).status_code == 201


@pytest.mark.parametrize("size_mb", [50])
async def test_bodies_over_the_limit_are_refused_before_parsing(client: httpx.AsyncClient, size_mb: int):
    await client.post("/api/v1/instruments", json={"symbol": "BIG"})
    payload = b"timestamp,open,high,low,close,volume\n" + b"2024-01-01,1,2,0.5,1.5,10\n" * (size_mb * 1024 * 1024 // 26)
    response = await client.post(
        "/api/v1/instruments/BIG/bars/csv", content=payload, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 413
    assert "QUANTDESK_MAX_UPLOAD_MB" in response.json()["detail"]


async def test_a_streamed_body_without_length_is_cut_at_the_limit(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "BIG"})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * (1024 * 1024)

    response = await client.post(
        "/api/v1/instruments/BIG/bars/csv", content=chunks(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 413


async def test_regression_a_failed_commit_is_never_reported_as_success(settings: Settings, engine):
    """The session used to commit after the response was sent: a failing commit still answered 200."""
    from quantdesk.api.deps import SessionDep
    from quantdesk.market.models import Instrument

    app = create_app(settings)
    router = APIRouter()

    @router.post("/clash")
    async def clash(session: SessionDep) -> dict[str, bool]:
        session.add_all([Instrument(symbol="CLASH"), Instrument(symbol="CLASH")])  # fails only at commit
        return {"ok": True}

    app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/clash")
            listed = await http.get("/api/v1/instruments")
    assert response.status_code == 500
    assert listed.json() == []


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def test_every_dependency_runs_on_the_event_loop():
    """FastAPI runs a plain function dependency in a worker thread: under load that hand-off cost more
    CPU than the rest of a webhook's routing (2.1 against 1.1 ms for an unknown token's 404)."""
    app = create_app(Settings(_env_file=None))
    routes = [context.route for context in iter_route_contexts(app.routes)]  # included routers too
    assert sum(isinstance(route, APIRoute) for route in routes) > 100
    threaded = {
        f"{route.path}: {dependency.call.__qualname__}"
        for route in routes
        if isinstance(route, APIRoute)
        for dependency in _dependencies(route.dependant)
        if dependency.call is not None
        and not (inspect.iscoroutinefunction(dependency.call) or inspect.isasyncgenfunction(dependency.call))
    }
    assert threaded == set()


def test_a_served_app_keeps_its_start_up_objects_out_of_the_collector():
    """`quantdesk serve` freezes what start-up allocated: a full collection then scans only what came
    after, instead of stalling every request for the ~200 ms it takes to scan the imported libraries."""
    gc.unfreeze()
    try:
        served_app()
        assert gc.get_freeze_count() > 100_000
    finally:
        gc.unfreeze()
