"""The walkforward command: in-sample sweeps choose parameters, out-of-sample windows trade them."""

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.backtest import display
from quantdesk.backtest.cli import (
    CommissionFixed,
    Fractional,
    Sizing,
    SizingValue,
    StrategyFile,
    axes_of,
    load_strategy_file,
    open_research_job,
)
from quantdesk.cli.runner import console, run_in_session, validated
from quantdesk.core.config import get_settings


def walkforward_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    train: Annotated[int, typer.Option(help="Bars each in-sample sweep reads")],
    test: Annotated[int, typer.Option(help="Bars each out-of-sample window trades")],
    step: Annotated[int | None, typer.Option(help="Bars between folds (test by default)")] = None,
    mode: Annotated[str, typer.Option(help="rolling or anchored")] = "rolling",
    metric: Annotated[str, typer.Option(help="sharpe, return_pct, max_drawdown_pct or trades")] = "sharpe",
    strategy: Annotated[str, typer.Option(help="Strategy to evaluate")] = "sma_cross",
    fast: Annotated[str | None, typer.Option(help="start:stop:step or a comma list, e.g. 5:50:5")] = None,
    slow: Annotated[str | None, typer.Option(help="start:stop:step or a comma list, e.g. 20:200:20")] = None,
    grid: Annotated[list[str] | None, typer.Option(help="Other axes as name=spec, e.g. window=5:30:5")] = None,
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
    strategy_file: StrategyFile = None,
) -> None:
    """Walk forward: per fold, sweep the grid on the training bars, trade the best on the next test bars."""
    from quantdesk.backtest import sweep, sweeps
    from quantdesk.backtest.schemas import WalkForwardCreate

    own = load_strategy_file(strategy_file)
    body = validated(
        WalkForwardCreate,
        {
            "symbol": symbol,
            "strategy": own.name if own is not None else strategy,
            "grid": axes_of(fast, slow, grid),
            "train": train,
            "test": test,
            "step": step,
            "mode": mode,
            "metric": metric,
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
        lambda session: sweeps.create_walkforward(session, body, get_settings(), strategy=own), body, own
    )
    outcome = sweeps.run_walkforward(loaded.bars, sweep.build_sweep(chosen, body.grid), body, loaded.periods_per_year)
    folds, summary = sweeps.fold_records(outcome), sweeps.summary_of(outcome)

    async def store(session: AsyncSession) -> None:
        stored = await sweeps.get_sweep(session, run.id, kind="walkforward")
        stored.status, stored.results, stored.summary, stored.completed = "done", folds, summary, stored.total

    run_in_session(store, write=True)
    title = f"walk-forward {run.id}: {symbol.upper()} {body.strategy}, {body.mode}, train {train} / test {test}"
    columns = ("fold", "test window", "parameters", f"in-sample {metric}", f"out-of-sample {metric}", "oos return %")
    shown = Table(*columns, title=title)
    for row in folds:
        shown.add_row(
            str(row["fold"]),
            f"{row['test_start'][:10]} .. {row['test_end'][:10]}",
            display.params(row["params"]),
            display.metric(metric, row["in_sample"][metric]),
            display.metric(metric, row["out_of_sample"][metric]),
            display.metric("return_pct", row["out_of_sample"]["return_pct"]),
        )
    console.print(shown)
    stitched = summary["metrics"]
    efficiency = summary["efficiency"]
    console.print(
        f"out of sample: return {display.metric('return_pct', stitched['return_pct'])}%, "
        f"CAGR {display.metric('cagr_pct', stitched['cagr_pct'])}%, "
        f"Sharpe {display.metric('sharpe', stitched['sharpe'])}, "
        f"max drawdown {display.metric('max_drawdown_pct', stitched['max_drawdown_pct'])}%, "
        f"{stitched['trades']} trades; efficiency {'n/a' if efficiency is None else f'{efficiency:.2f}'}; "
        f"stability {summary['stability']:.0%} ({display.params(summary['most_frequent_params'])})"
    )


def register(app: typer.Typer) -> None:
    app.command("walkforward")(walkforward_command)
