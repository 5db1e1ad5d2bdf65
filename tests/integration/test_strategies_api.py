"""/api/v1/strategies: users' rule strategies stored and versioned, run by backtests and sweeps, private to
their owner and admins; on both databases."""

import httpx
import pytest

from tests.factories import bars_as_json, make_bars

RSI_DIP = {
    "name": "rsi_dip",
    "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
    "entry": "crosses_below(rsi(close, n), lo)",
    "exit": "crosses_above(rsi(close, n), 70) or bars_held >= 20",
    "stop_loss_pct": 5,
}


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME"})
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(make_bars(800, seed=6)))
    return client


async def test_a_rule_strategy_is_stored_versioned_and_listed_next_to_the_built_ins(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    created = await alice.post("/api/v1/strategies", json=RSI_DIP)
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["version"]) == ("rule", 1)
    assert [p["name"] for p in created.json()["params"]] == ["n", "lo"]
    edited = await alice.put("/api/v1/strategies/rsi_dip", json={**RSI_DIP, "exit": "bars_held >= 10"})
    assert edited.json()["version"] == 2
    listed = {s["name"]: s for s in (await alice.get("/api/v1/strategies")).json()}
    assert {"sma_cross", "ema_cross", "rsi_reversion", "bollinger_breakout", "buy_and_hold"} <= set(listed)
    assert listed["rsi_dip"]["versions"] == [1, 2]
    assert listed["sma_cross"]["params"][0] == {"name": "fast", "default": 20, "min": 1, "max": 10000, "integer": True}
    first = await alice.get("/api/v1/strategies/rsi_dip?version=1")
    assert first.json()["document"]["exit"] == RSI_DIP["exit"]
    assert "rsi_dip" not in {s["name"] for s in (await bob.get("/api/v1/strategies")).json()}
    assert (await bob.get("/api/v1/strategies/rsi_dip")).status_code == 404


@pytest.mark.parametrize(
    ("document", "status", "message"),
    [
        ({**RSI_DIP, "entry": "crosses_below(rsl(close, n), lo)"}, 422, "unknown function 'rsl'; did you mean 'rsi'?"),
        ({**RSI_DIP, "entry": "rsi(close, n)"}, 422, "a condition (true or false per bar) is needed here"),
        ({**RSI_DIP, "name": "sma_cross"}, 409, "the name of a built-in strategy"),
        ({**RSI_DIP, "params": {"n": {"default": "x"}}}, 422, "default, min and max must be numbers"),
    ],
)
async def test_a_broken_document_is_refused_with_what_and_where(
    alice: httpx.AsyncClient, document: dict[str, object], status: int, message: str
):
    response = await alice.post("/api/v1/strategies", json=document)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    checked = await alice.post("/api/v1/strategies/check", json=document)
    if status == 422:
        assert checked.status_code == 422
    if "rsl" in message:
        assert response.json()["errors"][0] == {
            "field": "entry",
            "position": 15,
            "message": "unknown function 'rsl'; did you mean 'rsi'?",
        }


async def test_check_compiles_without_storing(alice: httpx.AsyncClient):
    checked = await alice.post("/api/v1/strategies/check", json=RSI_DIP)
    assert checked.json() == {
        "name": "rsi_dip",
        "params": [
            {"name": "n", "default": 14, "min": 2, "max": 100, "integer": True},
            {"name": "lo", "default": 30, "min": 1, "max": 50, "integer": True},
        ],
        "warmup_bars": 16,
    }
    assert (await alice.get("/api/v1/strategies/rsi_dip")).status_code == 404


async def test_runs_record_the_version_and_stay_rerunnable_after_an_edit_and_a_delete(
    acme: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    await alice.post("/api/v1/strategies", json=RSI_DIP)
    first = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip"})
    assert first.status_code == 201, first.text
    assert (first.json()["strategy_version"], first.json()["params"]) == (1, {"n": 14, "lo": 30})
    assert first.json()["data_fingerprint"]["bars"] == 800
    assert first.json()["settings"]["stop_loss_pct"] is None  # the run gave none: the strategy's 5% applies
    assert {t["exit_reason"] for t in first.json()["trades"]} >= {"signal"}
    await alice.put("/api/v1/strategies/rsi_dip", json={**RSI_DIP, "exit": "bars_held >= 3"})
    second = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip"})
    assert second.json()["strategy_version"] == 2
    assert all(t["bars_held"] <= 4 for t in second.json()["trades"] if t["exit_reason"] == "signal")
    assert (await alice.delete("/api/v1/strategies/rsi_dip")).status_code == 204
    gone = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip"})
    assert gone.status_code == 422
    rerun = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip", "strategy_version": 1})
    assert rerun.json()["metrics"] == first.json()["metrics"]
    assert rerun.json()["data_fingerprint"] == first.json()["data_fingerprint"]
    # Runs of a user's own strategy are theirs and the admins'.
    run_id = first.json()["id"]
    assert (await bob.get(f"/api/v1/backtests/{run_id}")).status_code == 404
    assert (await anonymous.get(f"/api/v1/backtests/{run_id}")).status_code == 404
    assert (await anonymous.get(f"/api/v1/reports/backtest/{run_id}")).status_code == 404
    assert (await acme.get(f"/api/v1/backtests/{run_id}")).status_code == 200
    assert run_id not in {b["id"] for b in (await bob.get("/api/v1/backtests")).json()}
    assert run_id in {b["id"] for b in (await alice.get("/api/v1/backtests")).json()}
    assert (await bob.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip"})).status_code == 422


async def test_a_sweep_of_a_rule_strategy_equals_its_backtests(
    acme: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    await alice.post("/api/v1/strategies", json=RSI_DIP)
    grid = {"n": [7, 14], "lo": "20:30:10"}
    queued = await alice.post(
        "/api/v1/sweeps", json={"symbol": "ACME", "strategy": "rsi_dip", "grid": grid, "rank_by": "return_pct"}
    )
    assert queued.status_code == 202, queued.text
    done = (await alice.get(f"/api/v1/sweeps/{queued.json()['id']}?rows=10")).json()
    assert (done["status"], done["strategy_version"], len(done["rows"])) == ("done", 1, 4)
    for row in done["rows"]:
        params = {"n": row["n"], "lo": row["lo"]}
        single = await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip", "params": params})
        assert single.json()["metrics"]["return_pct"] == pytest.approx(row["return_pct"], rel=1e-9)
    assert (await acme.get(f"/api/v1/sweeps/{done['id']}")).status_code == 200  # an admin
    assert (await anonymous.get(f"/api/v1/sweeps/{done['id']}")).status_code == 404


@pytest.mark.usefixtures("installed_package")
async def test_an_installed_python_strategy_is_offered_like_a_built_in(acme: httpx.AsyncClient, bob: httpx.AsyncClient):
    listed = {s["name"]: s for s in (await bob.get("/api/v1/strategies")).json()}
    assert listed["channel_breakout"]["kind"] == "python"
    assert [p["name"] for p in listed["channel_breakout"]["params"]] == ["n", "m"]
    run = await bob.post(
        "/api/v1/backtests", json={"symbol": "ACME", "strategy": "channel_breakout", "params": {"n": 30}}
    )
    assert run.status_code == 201, run.text
    assert run.json()["strategy_version"] is None
    queued = await bob.post(
        "/api/v1/sweeps", json={"symbol": "ACME", "strategy": "channel_breakout", "grid": {"n": "10:30:10"}}
    )
    done = (await bob.get(f"/api/v1/sweeps/{queued.json()['id']}")).json()
    assert (done["status"], done["total"]) == ("done", 3)
    taken = await bob.post("/api/v1/strategies", json={**RSI_DIP, "name": "channel_breakout"})
    assert taken.status_code == 409


async def test_a_rerun_uses_the_same_version_and_says_when_the_bars_changed(
    acme: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    await alice.post("/api/v1/strategies", json=RSI_DIP)
    first = (await alice.post("/api/v1/backtests", json={"symbol": "ACME", "strategy": "rsi_dip"})).json()
    await alice.put("/api/v1/strategies/rsi_dip", json={**RSI_DIP, "entry": "close > 0"})
    same = await alice.post(f"/api/v1/backtests/{first['id']}/rerun")
    assert same.status_code == 201, same.text
    assert (same.json()["rerun_of"], same.json()["strategy_version"], same.json()["data_changed"]) == (
        first["id"],
        1,
        False,
    )
    assert same.json()["metrics"] == first["metrics"]
    later = make_bars(810, seed=6)  # the same 800 bars and ten more
    await acme.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(later))
    changed = (await alice.post(f"/api/v1/backtests/{first['id']}/rerun")).json()
    assert changed["data_changed"] is True
    assert "bars 800 -> 810" in changed["data_changes"]
    assert (await bob.post(f"/api/v1/backtests/{first['id']}/rerun")).status_code == 404


async def test_a_walkforward_of_a_rule_strategy_runs_as_a_job(
    acme: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    await alice.post("/api/v1/strategies", json=RSI_DIP)
    body = {"symbol": "ACME", "strategy": "rsi_dip", "grid": {"n": [7, 14], "lo": [25, 35]}, "train": 300, "test": 150}
    queued = await alice.post("/api/v1/walkforwards", json=body)
    assert queued.status_code == 202, queued.text
    assert (queued.json()["total"], queued.json()["cost"]) == (3, 4 * 300 * 3)
    done = (await alice.get(f"/api/v1/walkforwards/{queued.json()['id']}")).json()
    assert (done["status"], done["strategy_version"], len(done["folds"])) == ("done", 1, 3)
    assert done["plan"] == {"train": 300, "test": 150, "step": 150, "mode": "rolling", "metric": "sharpe"}
    first = done["folds"][0]
    assert set(first["params"]) == {"n", "lo"}
    assert (
        set(first["in_sample"]) == set(first["out_of_sample"]) == {"return_pct", "max_drawdown_pct", "sharpe", "trades"}
    )
    assert len(done["equity"]) == 450
    assert done["metrics"]["trades"] == sum(int(f["out_of_sample"]["trades"]) for f in done["folds"])
    assert 0 < done["stability"] <= 1
    jobs = {job["id"]: job for job in (await alice.get("/api/v1/jobs")).json()}
    assert jobs[done["id"]]["kind"] == "walkforward"
    assert jobs[done["id"]]["url"] == f"/api/v1/walkforwards/{done['id']}"
    assert (await anonymous.get(f"/api/v1/walkforwards/{done['id']}")).status_code == 404
    report = (await alice.get(f"/api/v1/reports/walkforward/{done['id']}")).json()
    assert [section["heading"] for section in report["sections"]] == ["Folds", "Out of sample"]
    assert len(report["sections"][0]["blocks"][0]["rows"]) == 3
    pdf = await alice.get(f"/api/v1/reports/walkforward/{done['id']}?format=pdf")
    assert pdf.content.startswith(b"%PDF")
    assert (await anonymous.get(f"/api/v1/reports/walkforward/{done['id']}")).status_code == 404
    assert (await alice.get(f"/api/v1/sweeps/{done['id']}")).status_code == 404
    too_long = await alice.post("/api/v1/walkforwards", json={**body, "train": 700, "test": 150})
    assert too_long.status_code == 422
    assert "do not fit in the range's 800 bars" in too_long.json()["detail"]
    overlapping = await alice.post("/api/v1/walkforwards", json={**body, "step": 50})
    assert "must be at least test" in overlapping.json()["detail"]
