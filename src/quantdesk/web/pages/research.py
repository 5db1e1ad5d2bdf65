"""Research: backtests (form, result, sweep with its heat map), forecasts, and the PDF reports."""

import base64
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from quantdesk.accounts.service import Principal
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.backtest import service as backtests
from quantdesk.backtest import strategy_service, sweeps
from quantdesk.backtest.models import Backtest
from quantdesk.backtest.schemas import BacktestCreate, SweepCreate, WalkForwardCreate
from quantdesk.backtest.strategies import Param, Strategy
from quantdesk.core.errors import QuantdeskError, ValidationFailed
from quantdesk.core.types import RowId
from quantdesk.forecast import service as forecasts
from quantdesk.forecast.forecasters import KINDS
from quantdesk.forecast.schemas import ForecastCreate
from quantdesk.market import service as market
from quantdesk.reports import service as reports
from quantdesk.reports.model import Kind
from quantdesk.web import charts
from quantdesk.web.forms import build, given, grid, numbers
from quantdesk.web.session import Form, Member, Viewer
from quantdesk.web.templating import render

router = APIRouter()
BACKTEST_FIELDS = (
    "symbol",
    "interval",
    "start",
    "end",
    "strategy",
    "cash",
    "commission_pct",
    "commission_fixed",
    "slippage_bps",
    "stop_loss_pct",
    "take_profit_pct",
)
SWEEP_METRICS = ("sharpe", "return_pct", "max_drawdown_pct", "trades")
ERROR_KEYS = ("count", "mae", "rmse", "mape", "mase", "direction_accuracy")


def strategy_defaults(offered: dict[str, Strategy]) -> dict[str, str]:
    """Each strategy's parameters with their defaults, as the form's params field shows them."""
    return {
        name: " ".join(f"{key}={spec.default:g}" for key, spec in strategy.params.items())
        for name, strategy in offered.items()
    }


async def _backtest_page(
    request: Request,
    session: SessionDep,
    fields: dict[str, str],
    error: str | None = None,
    status: int = 200,
    caller: Principal | None = None,
) -> HTMLResponse:
    offered = await strategy_service.available(session, caller.user_id if caller is not None else None)
    context = {
        "page": "backtests",
        "instruments": [view.instrument for view in await market.list_instruments(session)],
        "strategies": offered,
        "defaults": strategy_defaults(offered),
        "form": fields,
        "metrics": SWEEP_METRICS,
        "runs": await backtests.list_backtests(session, limit=20, caller=caller),
        "sweep_runs": await sweeps.list_sweeps(session, limit=10, caller=caller),
        "walkforward_runs": await sweeps.list_sweeps(session, limit=10, caller=caller, kind="walkforward"),
        "error": error,
    }
    return render(request, "backtests.html", context, status)


@router.get("/dashboard/backtests", response_class=HTMLResponse)
async def backtest_form(
    request: Request, session: SessionDep, viewer: Viewer, symbol: str = "", strategy: str = "sma_cross"
) -> HTMLResponse:
    offered = await strategy_service.available(session, viewer.user_id if viewer is not None else None)
    chosen = strategy if strategy in offered else "sma_cross"
    fields = {"symbol": symbol.upper(), "strategy": chosen, "params": strategy_defaults(offered)[chosen]}
    swept = [key for key, spec in offered[chosen].params.items() if spec.integer][:2]
    if chosen != "sma_cross" and swept:
        fields["grid"] = " ".join(f"{key}={axis(offered[chosen].params[key])}" for key in swept)
    return await _backtest_page(request, session, fields, caller=viewer)


def axis(spec: Param) -> str:
    """A starting grid for one parameter: about five values around its default, within its bounds."""
    step = max(1, round(spec.default / 4))
    low, high = max(spec.minimum, spec.default - 2 * step), min(spec.maximum, spec.default + 2 * step)
    return f"{low:g}:{high:g}:{step:g}"


def backtest_body(fields: dict[str, str]) -> BacktestCreate:
    data: dict[str, Any] = given(fields, *BACKTEST_FIELDS)
    data["params"] = numbers(fields.get("params", ""), "parameters")
    data["allow_short"] = fields.get("allow_short") == "on"
    data["fractional"] = fields.get("fractional") == "on"
    return build(BacktestCreate, data)


@router.post("/dashboard/backtests", response_class=HTMLResponse)
async def run_backtest(
    request: Request, session: SessionDep, settings: SettingsDep, member: Member, fields: Form
) -> Response:
    try:
        run = await backtests.run_backtest(session, backtest_body(fields), settings, member)
    except QuantdeskError as problem:
        return await _backtest_page(request, session, fields, problem.detail, 422, member)
    return RedirectResponse(f"/dashboard/backtests/{run.id}", status_code=303)


def equity_frame(run: Backtest) -> pd.DataFrame:
    stamps, equity = backtests.decode_curve(run.equity_curve)
    index = pd.DatetimeIndex(stamps.astype("datetime64[us]")).tz_localize("UTC")
    drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100 if equity.size else equity
    return pd.DataFrame({"equity": equity, "drawdown_pct": drawdown}, index=index)


@router.get("/dashboard/backtests/{backtest_id}", response_class=HTMLResponse)
async def backtest_result(
    request: Request, session: SessionDep, settings: SettingsDep, viewer: Viewer, backtest_id: RowId
) -> HTMLResponse:
    run = await backtests.get_backtest(session, backtest_id, viewer)
    curve = equity_frame(run)
    hold = await backtests.buy_and_hold(session, run, settings, curve["equity"]) if len(curve) else None
    figure = charts.as_json(charts.equity(curve, hold, run.trades))
    return render(request, "backtest.html", {"page": "backtests", "run": run, "figure": figure})


def grid_form(fields: dict[str, str], *extra: str) -> dict[str, Any]:
    """A sweep's or walk-forward's form as a request body: the backtest fields, a grid and ``extra``."""
    data: dict[str, Any] = given(fields, *BACKTEST_FIELDS, *extra)
    data["grid"] = grid(fields.get("grid", ""))
    if not data["grid"]:
        raise ValidationFailed("grid: give each parameter a range, for example fast=5:50:5 slow=20:200:20")
    data["allow_short"] = fields.get("allow_short") == "on"
    return data


@router.post("/dashboard/sweeps", response_class=HTMLResponse)
async def run_sweep(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    member: Member,
    fields: Form,
    background: BackgroundTasks,
) -> Response:
    try:
        body = build(SweepCreate, grid_form(fields, "rank_by"))
        run = await sweeps.create_sweep(session, body, settings, member)
    except QuantdeskError as problem:
        return await _backtest_page(request, session, fields, problem.detail, 422, member)
    background.add_task(sweeps.execute_sweep, request.app.state.sessionmaker, run.id, settings)
    return RedirectResponse(f"/dashboard/sweeps/{run.id}", status_code=303)


@router.get("/dashboard/sweeps/{sweep_id}", response_class=HTMLResponse)
async def sweep_result(request: Request, session: SessionDep, viewer: Viewer, sweep_id: RowId) -> HTMLResponse:
    run = await sweeps.get_sweep(session, sweep_id, viewer)
    names = sweeps.parameter_names(run)
    rows = run.results or []
    figure = None
    if run.status == "done" and len(names) == 2 and rows:
        figure = charts.as_json(charts.heatmap(rows, names[0], names[1], run.rank_by))
    context = {"page": "backtests", "run": run, "names": names, "rows": rows[:20], "figure": figure}
    return render(request, "sweep.html", context)


@router.post("/dashboard/sweeps/{sweep_id}/cancel", response_class=HTMLResponse)
async def cancel_sweep(session: SessionDep, member: Member, _fields: Form, sweep_id: RowId) -> Response:
    """Stop a queued or running sweep of the viewer's (any, for an admin), as the API's cancel does."""
    await sweeps.cancel_sweep(session, sweep_id, member)
    return RedirectResponse(f"/dashboard/sweeps/{sweep_id}", status_code=303)


@router.post("/dashboard/sweeps/{sweep_id}/backtest", response_class=HTMLResponse)
async def open_sweep_cell(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    member: Member,
    fields: Form,
    sweep_id: RowId,
) -> Response:
    """Run the backtest of one combination of a sweep (a click on a heat-map cell or a table row)."""
    run = await sweeps.get_sweep(session, sweep_id, member)
    chosen = numbers(fields.get("params", ""), "parameters")
    same = {key: value for key, value in run.settings.items() if key in BacktestCreate.model_fields}
    body = build(
        BacktestCreate,
        {
            **same,
            "interval": run.interval,
            "strategy": run.strategy,
            "strategy_version": run.strategy_version,
            "params": chosen,
        },
    )
    created = await backtests.run_backtest(session, body, settings, member)
    return RedirectResponse(f"/dashboard/backtests/{created.id}", status_code=303)


async def _forecast_page(
    request: Request,
    session: SessionDep,
    fields: dict[str, str],
    error: str | None = None,
    status: int = 200,
    caller: Principal | None = None,
) -> HTMLResponse:
    context = {
        "page": "forecasts",
        "instruments": [view.instrument for view in await market.list_instruments(session)],
        "kinds": KINDS,
        "form": fields,
        "runs": await forecasts.list_forecasts(session, None, 20),
        "error": error,
    }
    return render(request, "forecasts.html", context, status)


@router.get("/dashboard/forecasts", response_class=HTMLResponse)
async def forecast_form(request: Request, session: SessionDep, _viewer: Viewer, symbol: str = "") -> HTMLResponse:
    return await _forecast_page(request, session, {"symbol": symbol.upper(), "model": "linear", "horizon": "30"})


@router.post("/dashboard/forecasts", response_class=HTMLResponse)
async def run_forecast(
    request: Request, session: SessionDep, settings: SettingsDep, _member: Member, fields: Form
) -> Response:
    try:
        body = build(ForecastCreate, given(fields, "symbol", "interval", "model", "horizon", "as_of"))
        forecast = await forecasts.create_forecast(session, body, settings)
    except QuantdeskError as problem:
        return await _forecast_page(request, session, fields, problem.detail, 422)
    return RedirectResponse(f"/dashboard/forecasts/{forecast.id}", status_code=303)


@router.get("/dashboard/forecasts/{forecast_id}", response_class=HTMLResponse)
async def forecast_result(request: Request, session: SessionDep, _viewer: Viewer, forecast_id: RowId) -> HTMLResponse:
    forecast = await forecasts.get_forecast(session, forecast_id)
    model = await forecasts.get_model(session, forecast.model_id)
    actual, scores = await forecasts.score(session, forecast)
    shown = await forecasts.picture(session, forecast)
    errors = [
        ("this forecast, so far", scores.as_dict()),
        ("model hold-out (one step)", model.holdout),
        ("model in sample (one step)", model.in_sample),
    ]
    context = {
        "page": "forecasts",
        "forecast": forecast,
        "model": model,
        "figure": charts.as_json(charts.forecast(shown.history, shown.predicted, shown.actual)),
        "errors": errors,
        "error_keys": ERROR_KEYS,
        "points": list(zip(forecast.points, actual, strict=True)),
        "arrived": scores.count,
    }
    return render(request, "forecast.html", context)


@router.get("/dashboard/reports/{kind}/{report_id}.pdf")
async def report_pdf(
    session: SessionDep,
    settings: SettingsDep,
    viewer: Viewer,
    kind: Kind,
    report_id: str,
    interval: str | None = None,
) -> Response:
    """The API's PDF report, for a browser signed in with the dashboard's cookie."""
    built = await reports.build(session, kind, report_id, settings, interval, caller=viewer)
    pdf = await reports.render_pdf(built)
    filename = f"quantdesk-{kind}-{built.report.id}.pdf".replace("/", "-")
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


WALKFORWARD_FIELDS = ("train", "test", "step", "mode", "metric")


@router.post("/dashboard/walkforwards", response_class=HTMLResponse)
async def run_walkforward(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    member: Member,
    fields: Form,
    background: BackgroundTasks,
) -> Response:
    """Queue a walk-forward of the form's strategy and grid, as POST /api/v1/walkforwards does."""
    try:
        body = build(WalkForwardCreate, grid_form(fields, *WALKFORWARD_FIELDS))
        run = await sweeps.create_walkforward(session, body, settings, member)
    except QuantdeskError as problem:
        return await _backtest_page(request, session, fields, problem.detail, 422, member)
    background.add_task(sweeps.execute_sweep, request.app.state.sessionmaker, run.id, settings)
    return RedirectResponse(f"/dashboard/walkforwards/{run.id}", status_code=303)


@router.get("/dashboard/walkforwards/{walkforward_id}", response_class=HTMLResponse)
async def walkforward_result(
    request: Request, session: SessionDep, viewer: Viewer, walkforward_id: RowId
) -> HTMLResponse:
    run = await sweeps.get_sweep(session, walkforward_id, viewer, kind="walkforward")
    summary = run.summary or {}
    figure = None
    if summary.get("equity"):
        stamps, equity = backtests.decode_curve(base64.b64decode(summary["equity"]))
        index = pd.DatetimeIndex(stamps.astype("datetime64[us]")).tz_localize("UTC")
        drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100
        curve = pd.DataFrame({"equity": equity, "drawdown_pct": drawdown}, index=index)
        figure = charts.as_json(charts.equity(curve, None, summary.get("trades", [])))
    context = {"page": "backtests", "run": run, "folds": run.results or [], "summary": summary, "figure": figure}
    return render(request, "walkforward.html", context)
