"""Forecast models, forecasts scored as actual bars arrive, the chart and `quantdesk forecast`, on both
databases."""

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from quantdesk.cli.main import app
from quantdesk.forecast.models import Forecast, ForecastModel
from tests.factories import bars_as_csv, bars_as_json, make_bars
from tests.integration.test_charts import png_size

# 400 weekday bars from Monday 2024-01-01 end on Friday 2025-07-11; the next 20 are kept back as the future.
ALL = make_bars(420, seed=11, weekdays_only=True)
PAST, FUTURE = ALL.take(np.arange(400)), ALL.take(np.arange(400, 420))


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.post("/api/v1/instruments", json={"symbol": "ACME", "asset_class": "stock"})
    response = await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(PAST))
    assert response.status_code == 200, response.text
    return client


async def count(session: AsyncSession, table: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_trained_model_is_stored_with_its_errors(acme: httpx.AsyncClient):
    response = await acme.post("/api/v1/forecasts/models", json={"symbol": "ACME", "model": "ridge"})
    assert response.status_code == 201, response.text
    model = response.json()
    assert (model["kind"], model["bars"], model["interval"]) == ("ridge", 400, "1d")
    assert model["as_of"].startswith("2025-07-11")
    assert model["holdout"]["count"] == 80
    assert model["holdout"]["mase"] > 0
    assert set(model["versions"]) == {"scikit-learn", "numpy", "skops"}
    assert (await acme.get(f"/api/v1/forecasts/models/{model['id']}")).json()["id"] == model["id"]
    assert [m["id"] for m in (await acme.get("/api/v1/forecasts/models?symbol=acme")).json()] == [model["id"]]


async def test_a_forecast_is_scored_as_the_actual_bars_arrive(acme: httpx.AsyncClient):
    model = (await acme.post("/api/v1/forecasts/models", json={"symbol": "ACME", "model": "linear"})).json()
    made = await acme.post("/api/v1/forecasts", json={"model_id": model["id"], "horizon": 20})
    assert made.status_code == 201, made.text
    forecast = made.json()
    points = forecast["points"]
    assert len(points) == 20
    assert points[0]["timestamp"] == "2025-07-14T00:00:00Z"  # Friday's forecast starts on Monday
    assert all(datetime.fromisoformat(p["timestamp"]).weekday() < 5 for p in points)
    assert all(p["lower"] < p["predicted"] < p["upper"] and p["actual"] is None for p in points)
    assert forecast["scores"]["count"] == 0

    half = FUTURE.take(np.arange(10))
    await acme.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(half))
    scored = (await acme.get(f"/api/v1/forecasts/{forecast['id']}")).json()
    actual = [p["actual"] for p in scored["points"]]
    assert actual[:10] == pytest.approx(half.close.tolist())
    assert actual[10:] == [None] * 10
    predicted = np.array([p["predicted"] for p in scored["points"][:10]])
    assert scored["scores"]["count"] == 10
    assert scored["scores"]["mae"] == pytest.approx(np.mean(np.abs(predicted - half.close)))
    assert scored["scores"]["mase"] == pytest.approx(scored["scores"]["mae"] / np.mean(np.abs(np.diff(PAST.close))))


async def test_a_forecast_without_a_model_fits_one_up_to_as_of(acme: httpx.AsyncClient, session: AsyncSession):
    made = await acme.post(
        "/api/v1/forecasts", json={"symbol": "ACME", "model": "drift", "horizon": 5, "as_of": "2025-06-30"}
    )
    assert made.status_code == 201, made.text
    forecast = made.json()
    assert forecast["as_of"].startswith("2025-06-30")
    assert forecast["points"][0]["actual"] is not None  # those days are stored already
    assert forecast["scores"]["count"] == 5
    model = await session.get(ForecastModel, forecast["model_id"])
    assert model is not None
    assert model.as_of == datetime(2025, 6, 30, tzinfo=UTC)
    chart = await acme.get(f"/api/v1/forecasts/{forecast['id']}/chart.png?width=800&height=400")
    assert chart.status_code == 200
    assert png_size(chart.content) == (800, 400)
    listed = (await acme.get("/api/v1/forecasts")).json()
    assert [f["id"] for f in listed] == [forecast["id"]]


async def test_a_model_saved_under_other_library_versions_must_be_retrained(
    acme: httpx.AsyncClient, session: AsyncSession
):
    model = (await acme.post("/api/v1/forecasts/models", json={"symbol": "ACME"})).json()
    stored = await session.get(ForecastModel, model["id"])
    assert stored is not None
    stored.versions = {**stored.versions, "scikit-learn": "0.24.2"}
    await session.commit()
    response = await acme.post("/api/v1/forecasts", json={"model_id": model["id"]})
    assert response.status_code == 409
    assert "saved with scikit-learn 0.24.2" in response.json()["detail"]
    assert "retrain it" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"symbol": "ACME", "horizon": 0}, 422, "horizon"),
        ({"symbol": "ACME", "horizon": 5000}, 422, "horizon"),
        ({"symbol": "ACME", "model": "prophet"}, 422, "valid ones: linear, ridge"),
        ({"symbol": "ACME", "as_of": "2024-01-31"}, 422, "needs at least 61 bars"),
        ({"horizon": 5}, 422, "give a symbol"),
        ({"model_id": 999}, 404, "no forecast model 999"),
        ({"symbol": "NOPE"}, 404, "NOPE"),
        (
            {"symbol": "ACME", "model": "gradient_boosting", "horizon": 201},
            422,
            "costs 2,010 (horizon x 10); this server makes forecasts of up to 2,000 (QUANTDESK_MAX_FORECAST_COST): "
            "ask for at most 200 bars",
        ),
    ],
)
async def test_bad_forecasts_are_refused_and_store_nothing(
    acme: httpx.AsyncClient, session: AsyncSession, body, status, message
):
    response = await acme.post("/api/v1/forecasts", json=body)
    assert response.status_code == status, response.text
    assert message in response.text
    assert (await count(session, ForecastModel), await count(session, Forecast)) == (0, 0)


async def test_an_origin_inside_the_training_window_is_refused(acme: httpx.AsyncClient):
    model = (await acme.post("/api/v1/forecasts/models", json={"symbol": "ACME"})).json()
    response = await acme.post("/api/v1/forecasts", json={"model_id": model["id"], "as_of": "2025-01-02"})
    assert response.status_code == 422
    assert "would have seen the future" in response.json()["detail"]
    assert (await acme.get("/api/v1/forecasts/12345")).status_code == 404
    assert (await acme.get("/api/v1/forecasts/models/12345")).status_code == 404


async def test_a_stored_models_forecast_is_capped_by_its_kind(acme: httpx.AsyncClient):
    model = (await acme.post("/api/v1/forecasts/models", json={"symbol": "ACME", "model": "gradient_boosting"})).json()
    over = await acme.post("/api/v1/forecasts", json={"model_id": model["id"], "horizon": 250})
    assert over.status_code == 422
    assert "QUANTDESK_MAX_FORECAST_COST" in over.json()["detail"]
    assert (await acme.post("/api/v1/forecasts", json={"model_id": model["id"], "horizon": 200})).status_code == 201


def test_forecast_commands(use_database: str, engine, tmp_path):
    path = tmp_path / "acme.csv"
    path.write_text(bars_as_csv(PAST))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--symbol", "ACME"]).exit_code == 0
    trained = runner.invoke(app, ["forecast", "train", "ACME", "--model", "ridge"])
    assert trained.exit_code == 0, trained.output
    assert "model 1: ACME ridge, 400 bars" in trained.output
    assert "hold-out" in trained.output
    predicted = runner.invoke(app, ["forecast", "predict", "--model-id", "1", "--horizon", "5"])
    assert predicted.exit_code == 0, predicted.output
    assert "forecast 1: ACME ridge" in predicted.output
    assert runner.invoke(app, ["forecast", "show", "1"]).exit_code == 0
    evaluated = runner.invoke(
        app, ["forecast", "evaluate", "ACME", "--model", "linear", "--folds", "3", "--horizon", "10"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "3 folds x 10 bars" in evaluated.output
    assert "naive" in evaluated.output
    assert ("linear beats naive" in evaluated.output) or ("linear loses to naive" in evaluated.output)
    refused = runner.invoke(app, ["forecast", "evaluate", "ACME", "--folds", "50", "--horizon", "30"])
    assert refused.exit_code == 1
    assert "fewer folds or a shorter horizon" in refused.output
