"""The backtest command."""

import json
from typing import Annotated

import typer
from rich.table import Table

from quantdesk.cli.runner import console, fail, run_in_session
from quantdesk.core.config import get_settings


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored result as JSON")] = False,
) -> None:
    """Backtest a strategy on stored bars, store the run and print its metrics."""
    from quantdesk.backtest import service  # numba and pandas: imported only when this command runs
    from quantdesk.backtest.schemas import BacktestCreate

    body = {
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
    }

    async def work(session):  # type: ignore[no-untyped-def]
        run = await service.run_backtest(session, BacktestCreate.model_validate(body), get_settings())
        return run.id, run.metrics, run.params

    backtest_id, metrics, params = run_in_session(work, write=True)
    if as_json:
        console.print_json(json.dumps({"id": backtest_id, "params": params, "metrics": metrics}))
        return
    table = Table("metric", "value", title=f"backtest {backtest_id}: {symbol.upper()} {strategy} {params}")
    for key, value in metrics.items():
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_command)
