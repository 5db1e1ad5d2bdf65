"""The backtest command."""

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.backtest import display
from quantdesk.cli.runner import console, fail, run_in_session, validated
from quantdesk.core.config import get_settings

if TYPE_CHECKING:
    from quantdesk.analytics.service import LoadedSeries
    from quantdesk.backtest.models import SweepRun
    from quantdesk.backtest.schemas import SweepCreate, WalkForwardCreate
    from quantdesk.backtest.strategies import Strategy

SIZING_HELP = "all_in (default), fraction (of equity: --sizing-value 0.5) or quantity (--sizing-value units)"
Sizing = Annotated[str, typer.Option(help=SIZING_HELP)]
SizingValue = Annotated[float, typer.Option(help="The fraction of equity, or the units, --sizing takes")]
Fractional = Annotated[bool, typer.Option(help="Trade fractions of a unit (crypto, fx); whole units otherwise")]
CommissionFixed = Annotated[float, typer.Option(help="Commission per fill, in the quote currency")]
StrategyFile = Annotated[
    Path | None,
    typer.Option(help="Run your own strategy: a Python module (.py) or a rule document (.json); docs/strategies.md"),
]


def open_research_job(
    create: Callable[[AsyncSession], Awaitable["SweepRun"]],
    body: "SweepCreate | WalkForwardCreate",
    own: "Strategy | None",
) -> tuple["SweepRun", "LoadedSeries", "Strategy"]:
    """Store a sweep or walk-forward job (``create``) and read its bars and strategy, in one transaction;
    the command then runs it in this process."""
    from quantdesk.analytics import service as analytics_service
    from quantdesk.backtest import strategy_service, sweeps

    async def work(session: AsyncSession) -> tuple["SweepRun", "LoadedSeries", "Strategy"]:
        run = await create(session)
        loaded = await analytics_service.load_series(session, sweeps.series_request(body), get_settings())
        chosen = own or await strategy_service.lookup(session, body.strategy, body.strategy_version, None)
        return run, loaded, chosen

    return run_in_session(work, write=True)


def load_strategy_file(path: Path | None) -> "Strategy | None":
    """The strategy of a --strategy-file, or a clean error that says what is wrong with it."""
    if path is None:
        return None
    from quantdesk.backtest import plugins
    from quantdesk.core.errors import ValidationFailed

    try:
        return plugins.from_file(path)
    except ValidationFailed as exc:
        fail(exc.detail, exc.errors or None)


def _params(fast: int | None, slow: int | None, window: int | None, param: list[str]) -> dict[str, float]:
    values: dict[str, float] = {
        k: float(v) for k, v in (("fast", fast), ("slow", slow), ("window", window)) if v is not None
    }
    for item in param:
        key, sep, raw = item.partition("=")
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            fail(f"--param '{item}' is not key=number")
        if not sep:
            fail(f"--param '{item}' is not key=number")
    return values


def backtest_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    strategy: Annotated[
        str, typer.Option(help="sma_cross, ema_cross, rsi_reversion, bollinger_breakout, buy_and_hold")
    ] = "sma_cross",
    fast: Annotated[int | None, typer.Option(help="Fast window (crossovers)")] = None,
    slow: Annotated[int | None, typer.Option(help="Slow window (crossovers)")] = None,
    window: Annotated[int | None, typer.Option(help="Window (rsi_reversion, bollinger_breakout)")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Other parameters as key=value, e.g. lower=25")] = None,
    interval: Annotated[str | None, typer.Option(help="Bar interval")] = None,
    start: Annotated[str | None, typer.Option(help="First day (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (ISO 8601)")] = None,
    cash: Annotated[float, typer.Option(help="Starting cash")] = 10_000.0,
    commission_pct: Annotated[float, typer.Option(help="Commission, percent of notional")] = 0.0,
    slippage_bps: Annotated[float, typer.Option(help="Slippage in basis points")] = 0.0,
    stop_loss_pct: Annotated[float | None, typer.Option(help="Stop-loss, percent below entry")] = None,
    take_profit_pct: Annotated[float | None, typer.Option(help="Take-profit, percent above entry")] = None,
    fill: Annotated[str, typer.Option(help="next_open or close")] = "next_open",
    allow_short: Annotated[bool, typer.Option(help="Long/short")] = False,
    commission_fixed: CommissionFixed = 0.0,
    sizing: Sizing = "all_in",
    sizing_value: SizingValue = 1.0,
    fractional: Fractional = False,
    strategy_file: StrategyFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored result as JSON")] = False,
) -> None:
    """Backtest a strategy on stored bars, store the run and print its metrics."""
    from quantdesk.backtest import service  # numba and pandas: imported only when this command runs
    from quantdesk.backtest.schemas import BacktestCreate

    own = load_strategy_file(strategy_file)
    strategy = own.name if own is not None else strategy
    body: dict[str, object] = {
        "symbol": symbol,
        "strategy": strategy,
        "params": _params(fast, slow, window, param or []),
        "interval": interval,
        "start": start,
        "end": end,
        "cash": cash,
        "commission_pct": commission_pct,
        "slippage_bps": slippage_bps,
        "stop_loss_pct": stop_loss_pct,
        "take_profit_pct": take_profit_pct,
        "fill": fill,
        "allow_short": allow_short,
        "commission_fixed": commission_fixed,
        "sizing": sizing,
        "sizing_value": sizing_value,
        "fractional": fractional,
    }

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any], dict[str, Any]]:
        run = await service.run_backtest(session, validated(BacktestCreate, body), get_settings(), strategy=own)
        return run.id, run.metrics, run.params

    backtest_id, metrics, params = run_in_session(work, write=True)
    if as_json:
        console.print_json(json.dumps({"id": backtest_id, "params": params, "metrics": metrics}))
        return
    title = f"backtest {backtest_id}: {symbol.upper()} {strategy} {display.params(params)}".rstrip()
    table = Table("metric", "value", title=title)
    for key, value in metrics.items():
        table.add_row(key, display.metric(key, value))
    console.print(table)


def sweep_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    strategy: Annotated[str, typer.Option(help="Strategy to sweep")] = "sma_cross",
    fast: Annotated[str | None, typer.Option(help="start:stop:step or a comma list, e.g. 5:100:5")] = None,
    slow: Annotated[str | None, typer.Option(help="start:stop:step or a comma list, e.g. 20:400:20")] = None,
    grid: Annotated[list[str] | None, typer.Option(help="Other axes as name=spec, e.g. window=5:30:5")] = None,
    rank_by: Annotated[str, typer.Option(help="sharpe, return_pct, max_drawdown_pct or trades")] = "sharpe",
    interval: Annotated[str | None, typer.Option(help="Bar interval")] = None,
    start: Annotated[str | None, typer.Option(help="First day (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (ISO 8601)")] = None,
    cash: Annotated[float, typer.Option(help="Starting cash")] = 10_000.0,
    commission_pct: Annotated[float, typer.Option(help="Commission, percent of notional")] = 0.0,
    commission_fixed: CommissionFixed = 0.0,
    slippage_bps: Annotated[float, typer.Option(help="Slippage in basis points")] = 0.0,
    sizing: Sizing = "all_in",
    sizing_value: SizingValue = 1.0,
    fractional: Fractional = False,
    fill: Annotated[str, typer.Option(help="next_open or close")] = "next_open",
    allow_short: Annotated[bool, typer.Option(help="Long/short")] = False,
    top: Annotated[int, typer.Option(help="Rows to print")] = 10,
    heatmap: Annotated[Path | None, typer.Option(help="Write a heat map PNG (two-parameter grids)")] = None,
    strategy_file: StrategyFile = None,
) -> None:
    """Backtest every combination of a grid, store the ranked table, print the best rows."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from quantdesk.backtest import sweep, sweeps
    from quantdesk.backtest.schemas import SweepCreate

    own = load_strategy_file(strategy_file)
    strategy = own.name if own is not None else strategy
    axes = axes_of(fast, slow, grid)
    body = validated(
        SweepCreate,
        {
            "symbol": symbol,
            "strategy": strategy,
            "grid": axes,
            "rank_by": rank_by,
            "interval": interval,
            "start": start,
            "end": end,
            "cash": cash,
            "commission_pct": commission_pct,
            "commission_fixed": commission_fixed,
            "slippage_bps": slippage_bps,
            "sizing": sizing,
            "sizing_value": sizing_value,
            "fractional": fractional,
            "fill": fill,
            "allow_short": allow_short,
        },
    )

    run, loaded, chosen = open_research_job(
        lambda session: sweeps.create_sweep(session, body, get_settings(), strategy=own), body, own
    )
    plan = sweep.build_sweep(chosen, body.grid)
    with Progress(
        *Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(f"sweeping {len(plan.combinations):,} combinations", total=len(plan.combinations))
        table = sweeps.run_in_batches(
            loaded.bars, plan, body, loaded.periods_per_year, lambda done, _total: bar.update(task, completed=done)
        )
    rows = sweeps.records(table)
    deflated = sweeps.selection_of(table, loaded.bars, plan, body, loaded.periods_per_year)

    async def store(session: AsyncSession) -> None:
        stored = await sweeps.get_sweep(session, run.id)
        stored.status, stored.results, stored.completed = "done", rows, stored.total
        stored.selection = deflated

    run_in_session(store, write=True)
    shown = Table(*table.columns, title=f"sweep {run.id}: best {min(top, len(rows))} by {rank_by}")
    for row in rows[:top]:
        shown.add_row(*(display.row_value(name, value, set(axes)) for name, value in row.items()))
    console.print(shown)
    if deflated is not None:
        console.print(
            f"best Sharpe {deflated['best_sharpe']:.3f} of {deflated['trials']:.0f} combinations; "
            f"luck alone would give {deflated['expected_max_sharpe']:.3f}; "
            f"deflated Sharpe ratio {deflated['deflated_sharpe']:.3f}"
        )
    if heatmap is not None:
        if len(axes) != 2:
            fail("--heatmap needs exactly two swept parameters")
        x, y = list(axes)
        title = f"sweep {run.id}: {symbol.upper()} {strategy}, {rank_by}"
        from quantdesk.backtest.charts import render_heatmap  # matplotlib: loaded only for a heat map

        heatmap.write_bytes(render_heatmap(rows, x, y, rank_by, title))
        console.print(f"wrote {heatmap}")


def axes_of(fast: str | None, slow: str | None, grid: list[str] | None) -> dict[str, object]:
    """The grid of --fast, --slow and each --grid name=spec."""
    axes: dict[str, object] = {k: _axis(v) for k, v in (("fast", fast), ("slow", slow)) if v is not None}
    for item in grid or []:
        key, sep, spec = item.partition("=")
        if not sep:
            fail(f"--grid '{item}' is not name=spec")
        axes[key.strip()] = _axis(spec)
    return axes


def _axis(spec: str) -> object:
    """A CLI axis: start:stop:step stays text for the grid parser; a comma list becomes numbers."""
    if ":" in spec:
        return spec
    try:
        return [float(part) for part in spec.split(",")]
    except ValueError:
        fail(f"'{spec}' is not start:stop:step or a comma-separated list of numbers")


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_command)
    app.command("sweep")(sweep_command)
