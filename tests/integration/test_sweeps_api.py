"""POST/GET /api/v1/sweeps, the heat map, and `quantdesk sweep`, on both databases."""

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner

from quantdesk.backtest import sweeps
from quantdesk.backtest.models import SweepRun
from quantdesk.cli.main import app
from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.db import create_sessionmaker
from tests.factories import bars_as_csv, bars_as_json, make_bars
from tests.integration.test_charts import png_size

GRID = {"fast": "5:15:5", "slow": [20, 30]}


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME"})
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(make_bars(500, seed=4)))
    return client


async def test_a_sweep_is_queued_then_runs_to_a_ranked_table(acme: httpx.AsyncClient):
    queued = await acme.post(
        "/api/v1/sweeps", json={"symbol": "ACME", "strategy": "sma_cross", "grid": GRID, "rank_by": "return_pct"}
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    assert queued.json()["total"] == 6
    done = (await acme.get(f"/api/v1/sweeps/{queued.json()['id']}?rows=100")).json()
    assert done["status"] == "done"
    assert (done["progress_pct"], done["completed"]) == (100.0, 6)
    returns = [row["return_pct"] for row in done["rows"]]
    assert returns == sorted(returns, reverse=True)
    assert done["best_params"] == {"fast": done["rows"][0]["fast"], "slow": done["rows"][0]["slow"]}
    best_sharpe = max(row["sharpe"] for row in done["rows"] if row["sharpe"] is not None)
    assert done["selection"]["trials"] == 6
    assert done["selection"]["best_sharpe"] == pytest.approx(best_sharpe, rel=1e-6)
    assert 0 <= done["selection"]["deflated_sharpe"] <= 1
    single = await acme.post("/api/v1/backtests", json={"symbol": "ACME", "params": done["best_params"]})
    assert single.json()["metrics"]["return_pct"] == pytest.approx(returns[0])
    heatmap = await acme.get(f"/api/v1/sweeps/{done['id']}/heatmap.png")
    assert heatmap.status_code == 200
    assert png_size(heatmap.content) == (1000, 700)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"grid": {"fast": "1:1000:1", "slow": "1:1000:1"}},
            422,
            "the grid has 1,000,000 combinations; the limit is 100,000",
        ),
        ({"strategy": "magic", "grid": {}}, 422, "valid ones"),
        ({"grid": {"fast": [5], "slow": [600]}}, 422, "need 602 bars; the range has 500"),
        ({"grid": {"fast": [50], "slow": [10]}}, 422, "no combination of the grid is valid"),
        ({"grid": GRID, "rank_by": "luck"}, 422, "rank_by"),
        ({"grid": GRID, "start": "2030-01-01"}, 404, "stored 1d bars span"),
    ],
)
async def test_bad_sweeps_are_refused_before_anything_runs(acme: httpx.AsyncClient, body, status, message):
    response = await acme.post("/api/v1/sweeps", json={"symbol": "ACME", **body})
    assert response.status_code == status, response.text
    assert message in response.text


async def test_heatmaps_need_a_finished_two_parameter_sweep(acme: httpx.AsyncClient, session: AsyncSession):
    one = (await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": {"fast": [5, 10], "slow": [30]}})).json()
    response = await acme.get(f"/api/v1/sweeps/{one['id']}/heatmap.png")
    assert response.status_code == 200  # two parameters, one of them a single value
    rsi = (
        await acme.post(
            "/api/v1/sweeps", json={"symbol": "ACME", "strategy": "rsi_reversion", "grid": {"window": [7, 14]}}
        )
    ).json()
    assert (await acme.get(f"/api/v1/sweeps/{rsi['id']}/heatmap.png")).status_code == 422
    running = await session.get(SweepRun, one["id"])
    assert running is not None
    running.status = "running"
    await session.commit()
    busy = await acme.get(f"/api/v1/sweeps/{one['id']}/heatmap.png")
    assert busy.status_code == 409
    assert "is running" in busy.json()["detail"]
    assert (await acme.get("/api/v1/sweeps/9999")).status_code == 404


async def test_a_sweep_abandoned_by_a_stopped_server_is_found_and_rerun(
    acme: httpx.AsyncClient, session: AsyncSession, engine: AsyncEngine, settings: Settings
):
    first = (await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).json()
    run = await session.get(SweepRun, first["id"])
    assert run is not None
    # What a server killed mid-sweep leaves behind: running, half done, no results, silent since.
    run.status, run.completed, run.results, run.finished_at = "running", 3, None, None
    run.heartbeat_at = utcnow() - sweeps.STALE_AFTER - timedelta(seconds=1)
    await session.commit()
    factory = create_sessionmaker(engine)
    assert await sweeps.abandoned(factory) == [first["id"]]
    # Meanwhile ten more bars arrived: the rerun reads them, and its fingerprint says so.
    await acme.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(make_bars(510, seed=4)))
    await sweeps.execute_sweep(factory, first["id"], settings)
    rerun = (await acme.get(f"/api/v1/sweeps/{first['id']}?rows=100")).json()
    assert (rerun["status"], rerun["completed"], len(rerun["rows"])) == ("done", 6, 6)
    assert (rerun["data_fingerprint"]["bars"], rerun["data_fingerprint"]["queued_with"]["bars"]) == (510, 500)
    assert await sweeps.abandoned(factory) == []


async def test_a_sweep_is_claimed_by_exactly_one_runner(
    acme: httpx.AsyncClient, session: AsyncSession, engine: AsyncEngine
):
    first = (await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).json()
    run = await session.get(SweepRun, first["id"])
    assert run is not None
    run.status, run.heartbeat_at = "queued", utcnow()
    await session.commit()
    factory = create_sessionmaker(engine)
    claims = await asyncio.gather(*(sweeps.claim(factory, first["id"]) for _ in range(4)))
    assert sum(body is not None for body in claims) == 1
    # Now running with a fresh heartbeat: alive, so nobody else may take it.
    assert await sweeps.abandoned(factory) == []
    assert await sweeps.claim(factory, first["id"]) is None


async def queued_sweep_of(client: httpx.AsyncClient, session: AsyncSession) -> int:
    """A sweep of the client's, left queued (in these tests a sweep runs to its end inside the request)."""
    done = (await client.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).json()
    run = await session.get(SweepRun, done["id"])
    assert run is not None
    run.status, run.results, run.completed, run.finished_at, run.heartbeat_at = "queued", None, 0, None, utcnow()
    await session.commit()
    return int(done["id"])


async def test_a_sweep_over_the_cost_cap_is_refused_with_its_cost(acme: httpx.AsyncClient, settings: Settings):
    settings.max_sweep_cost = 2_999  # GRID: 6 combinations x 500 bars = 3,000
    response = await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})
    assert response.status_code == 422
    assert "would cost 3,000 (6 combinations x 500 bars)" in response.json()["detail"]
    assert "up to 2,999 (QUANTDESK_MAX_SWEEP_COST)" in response.json()["detail"]
    settings.max_sweep_cost = 3_000
    accepted = await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})
    assert (accepted.status_code, accepted.json()["cost"]) == (202, 3_000)


async def test_a_user_with_their_share_of_active_sweeps_gets_429_until_one_ends(
    acme: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient, session: AsyncSession, settings: Settings
):
    settings.max_jobs_per_user = 2
    first, second = await queued_sweep_of(alice, session), await queued_sweep_of(alice, session)
    third = await alice.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})
    assert third.status_code == 429, third.text
    assert third.headers["retry-after"] == "10"
    assert "2 sweep(s) queued or running" in third.json()["detail"]
    assert (await bob.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).status_code == 202

    assert (await bob.post(f"/api/v1/sweeps/{first}/cancel")).status_code == 403  # not bob's
    cancelled = await alice.post(f"/api/v1/sweeps/{first}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (await alice.post(f"/api/v1/sweeps/{first}/cancel")).status_code == 409
    assert (await alice.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).status_code == 202

    jobs = (await alice.get("/api/v1/jobs")).json()
    assert [(job["id"], job["status"]) for job in jobs][-2:] == [(second, "queued"), (first, "cancelled")]
    assert {job["kind"] for job in jobs} == {"sweep"}
    assert all(job["url"] == f"/api/v1/sweeps/{job['id']}" for job in jobs)
    assert len((await bob.get("/api/v1/jobs")).json()) == 1  # each sees their own


async def test_a_running_sweep_stops_after_the_batch_in_which_it_was_cancelled(
    acme: httpx.AsyncClient,
    session: AsyncSession,
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
):
    sweep_id = await queued_sweep_of(acme, session)
    factory = create_sessionmaker(engine)
    store = sweeps._store_progress
    reports: list[int] = []

    async def cancel_at_the_first_report(factory_: object, sweep_id_: int, done: int) -> bool:
        reports.append(done)
        if len(reports) == 1:
            async with factory() as other, other.begin():
                run = await other.get(SweepRun, sweep_id)
                assert run is not None
                run.status = "cancelled"
        return await store(factory, sweep_id_, done)

    monkeypatch.setattr(sweeps, "_store_progress", cancel_at_the_first_report)
    await sweeps.execute_sweep(factory, sweep_id, settings)
    stopped = (await acme.get(f"/api/v1/sweeps/{sweep_id}")).json()
    assert (stopped["status"], stopped["completed"], reports) == ("cancelled", 0, [1])
    assert (await acme.get(f"/api/v1/sweeps/{sweep_id}/results.csv")).status_code == 409


async def test_a_finished_sweep_exports_every_row_as_csv(acme: httpx.AsyncClient):
    done = (await acme.post("/api/v1/sweeps", json={"symbol": "ACME", "grid": GRID})).json()
    exported = await acme.get(f"/api/v1/sweeps/{done['id']}/results.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("fast,slow,")
    assert len(lines) == 1 + 6


def test_sweep_command_prints_the_best_rows_and_writes_the_heatmap(use_database: str, engine, tmp_path: Path):
    path = tmp_path / "acme.csv"
    path.write_text(bars_as_csv(make_bars(300)))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--symbol", "ACME"]).exit_code == 0
    heat = tmp_path / "heat.png"
    result = runner.invoke(
        app, ["sweep", "ACME", "--fast", "5:20:5", "--slow", "30,60", "--top", "3", "--heatmap", str(heat)]
    )
    assert result.exit_code == 0, result.output
    assert "best 3 by sharpe" in result.output
    assert png_size(heat.read_bytes()) == (1000, 700)
    bad = runner.invoke(app, ["sweep", "ACME", "--fast", "x,y"])
    assert bad.exit_code == 1
    assert "comma-separated list" in bad.output
