"""Analytics commands: stats and enriched."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quantdesk.cli.runner import console, fail, run_in_session
from quantdesk.core.config import get_settings

# Services are imported inside the commands: pandas, numba and matplotlib cost seconds to import, and
# `quantdesk --help` or an unrelated command should not pay for them.

Interval = Annotated[str | None, typer.Option(help="Bar interval; the only stored one when omitted")]
Start = Annotated[str | None, typer.Option(help="First day or instant (ISO 8601), inclusive")]
End = Annotated[str | None, typer.Option(help="Last day or instant (ISO 8601), inclusive")]
Frequency = Annotated[str | None, typer.Option(help="Resample to day, week, month, quarter or year")]


def stats_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    interval: Interval = None,
    start: Start = None,
    end: End = None,
    frequency: Frequency = None,
) -> None:
    """Summary statistics of the close: range, mean, volatility, return, drawdown."""
    from quantdesk.analytics import service

    request = service.SeriesRequest(symbol, interval, start, end, frequency)
    result = run_in_session(lambda s: service.instrument_stats(s, request, get_settings()))
    loaded, summary = result.series, result.summary
    period = loaded.frequency.value if loaded.frequency else loaded.interval.value
    table = Table("statistic", "value", title=f"{loaded.instrument.symbol} {period}")
    for name, value in summary.__dict__.items():
        shown = f"{value:,.6g}" if isinstance(value, float) else str(value)
        table.add_row(name, shown)
    console.print(table)


def enriched_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    interval: Interval = None,
    start: Start = None,
    end: End = None,
    frequency: Frequency = None,
    window: Annotated[int, typer.Option(help="Rolling window (bars)")] = 20,
    volatility_window: Annotated[int, typer.Option(help="Volatility window (bars)")] = 20,
    normalize_base: Annotated[float, typer.Option(help="Value of the first bar after normalising")] = 100.0,
    indicators: Annotated[
        str | None, typer.Option(help="e.g. sma:20,ema:50,rsi:14,macd:12:26:9,bollinger:20:2,atr:14")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write CSV here instead of printing")] = None,
) -> None:
    """The bars with returns, rolling statistics and indicators; -o writes the whole table as CSV."""
    from quantdesk.analytics import service
    from quantdesk.analytics.rendering import table_columns, table_rows

    request = service.SeriesRequest(symbol, interval, start, end, frequency)
    result = run_in_session(
        lambda s: service.enriched_table(
            s,
            request,
            get_settings(),
            window=window,
            volatility_window=volatility_window,
            normalize_base=normalize_base,
            indicators=indicators,
        )
    )
    columns, rows = table_columns(result.table), table_rows(result.table)
    if output is not None:
        framed = result.table.copy()
        framed.insert(0, "timestamp", [row[0] for row in rows])
        framed.to_csv(output, index=False, na_rep="")
        console.print(f"wrote {len(rows):,} rows x {len(columns)} columns to {output}")
        return
    table = Table(*columns[:1], *columns[4:6], *columns[-4:], title=f"{result.series.instrument.symbol}: last 10 rows")
    for row in rows[-10:]:
        picked = [row[0], *row[4:6], *row[-4:]]
        table.add_row(*(f"{v:,.4f}" if isinstance(v, float) else str(v) if v is not None else "" for v in picked))
    console.print(table)
    console.print(f"[dim]{len(columns)} columns: {', '.join(columns)}; use -o file.csv for all of them[/]")


def chart_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write")],
    interval: Interval = None,
    start: Start = None,
    end: End = None,
    frequency: Frequency = None,
    indicators: Annotated[str | None, typer.Option(help="Overlays, e.g. sma:50,ema:200,bollinger:20:2")] = None,
    lower: Annotated[str, typer.Option(help="Bottom panel: returns or volatility")] = "returns",
    width: Annotated[int, typer.Option(min=300, max=4000)] = 1200,
    height: Annotated[int, typer.Option(min=200, max=3000)] = 700,
) -> None:
    """Draw a price chart with volume and a returns or volatility panel as PNG."""
    from quantdesk.analytics import service

    if lower not in ("returns", "volatility"):
        fail("--lower must be returns or volatility")
    request = service.SeriesRequest(symbol, interval, start, end, frequency)
    png = run_in_session(
        lambda s: service.chart_png(
            s, request, get_settings(), width=width, height=height, overlays=indicators, lower_panel=lower
        )
    )
    output.write_bytes(png)
    console.print(f"wrote {width}x{height} chart to {output}")


def register(app: typer.Typer) -> None:
    app.command("chart")(chart_command)
    app.command("stats")(stats_command)
    app.command("enriched")(enriched_command)
