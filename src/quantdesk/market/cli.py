"""Market-data commands: ingest, fetch, demo, instruments."""

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quantdesk.cli.runner import console, fail, run_in_session
from quantdesk.core.clock import utcnow
from quantdesk.core.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from quantdesk.market.ingest import IngestReport

# Services (and with them pandas) are imported inside the commands, so that `quantdesk --help` and
# light commands start quickly.

READ_CHUNK = 1 << 20


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def print_report(report: "IngestReport") -> None:
    from quantdesk.market.intervals import Interval

    table = Table(show_header=False, box=None)
    for key in (
        "symbol",
        "interval",
        "interval_source",
        "format",
        "received",
        "inserted",
        "updated",
        "unchanged",
        "first",
        "last",
    ):
        value = getattr(report, key)
        if value is not None:
            table.add_row(key, str(value.value if isinstance(value, Interval) else value))
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note:[/] {note}")


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        fail(f"no such file: {path}")
    size = path.stat().st_size
    chunks = []
    with _progress() as progress, path.open("rb") as handle:
        task = progress.add_task(f"reading {path.name} (bytes)", total=size)
        while chunk := handle.read(READ_CHUNK):
            chunks.append(chunk)
            progress.advance(task, len(chunk))
    return b"".join(chunks)


def ingest_command(
    file: Annotated[
        Path, typer.Argument(help="CSV file: Yahoo, Stooq, Binance klines or timestamp,open,high,low,close,volume")
    ],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument to store the bars under")],
    interval: Annotated[str | None, typer.Option(help="1m 5m 15m 1h 4h 1d 1w; inferred when omitted")] = None,
    create: Annotated[bool, typer.Option(help="Create the instrument if it does not exist")] = True,
) -> None:
    """Store the bars of a CSV file (all of them, or none and the list of bad rows)."""
    from quantdesk.market import ingest
    from quantdesk.market.intervals import parse_interval

    data = _read_file(file)

    async def work(session: "AsyncSession") -> "IngestReport":
        chosen = parse_interval(interval) if interval else None
        return await ingest.ingest_csv(session, symbol, data, chosen, create)

    with _progress() as progress:
        task = progress.add_task("validating and storing bars", total=None)
        report = run_in_session(work, write=True)
        progress.update(task, total=report.received, completed=report.received)
    print_report(report)


def fetch_command(
    provider: Annotated[str, typer.Argument(help="alphavantage or coingecko")],
    symbol: Annotated[str, typer.Argument(help="Instrument symbol, e.g. IBM or BTCUSD")],
    interval: Annotated[str, typer.Option(help="coingecko: 1d, 4h or 1h")] = "1d",
    coin_id: Annotated[str | None, typer.Option(help="coingecko coin id, e.g. bitcoin")] = None,
    vs_currency: Annotated[str | None, typer.Option(help="coingecko quote currency, e.g. usd")] = None,
    days: Annotated[int | None, typer.Option(help="coingecko: days of history (default: what is missing)")] = None,
    outputsize: Annotated[str, typer.Option(help="alphavantage: auto, compact or full")] = "auto",
) -> None:
    """Fetch bars from a provider; only what is not stored yet is asked for and written."""
    from quantdesk.market.providers import service as providers
    from quantdesk.market.providers.schemas import AlphaVantageFetch, CoinGeckoFetch

    settings = get_settings()

    async def work(session: "AsyncSession") -> "IngestReport":
        if provider == "alphavantage":
            body = AlphaVantageFetch.model_validate({"symbol": symbol, "outputsize": outputsize})
            return await providers.fetch_alphavantage(session, body, settings)
        if provider == "coingecko":
            body_cg = CoinGeckoFetch.model_validate(
                {"symbol": symbol, "coin_id": coin_id, "vs_currency": vs_currency, "interval": interval, "days": days}
            )
            return await providers.fetch_coingecko(session, body_cg, settings)
        fail(f"unknown provider '{provider}'; use alphavantage or coingecko")

    with _progress() as progress:
        progress.add_task(f"fetching {symbol} from {provider}", total=None)
        report = run_in_session(work, write=True)
    print_report(report)


def demo_command(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when the database has instruments")] = False,
    end: Annotated[
        str | None, typer.Option(help="Last day (exclusive) of the data, ISO date; default today (UTC)")
    ] = None,
    minutes: Annotated[bool, typer.Option(help="Include a year of 1-minute BTCUSD bars (525,600 bars)")] = True,
) -> None:
    """Load the synthetic demo data set (6 instruments, 10 years daily, 1 year of 1-minute bars)."""
    from quantdesk.market import demo

    try:
        last_day = date.fromisoformat(end) if end else utcnow().date()
    except ValueError:
        fail(f"--end '{end}' is not an ISO date such as 2025-01-31")
    if if_empty and not run_in_session(demo.is_empty):
        console.print(
            "demo: the database already has instruments; nothing loaded. API keys are shown once: issue "
            "another with `.venv/bin/quantdesk users key alice` (or admin, bob)",
            highlight=False,
        )
        return
    total_bars = len(demo.DEMO_SET) * demo.YEARS * 300 + (525_600 if minutes else 0)
    with _progress() as progress:
        task = progress.add_task("loading synthetic demo data (bars)", total=total_bars)

        def advance(label: str, count: int) -> None:
            progress.update(task, advance=count, description=f"loaded {label}")

        reports = run_in_session(lambda s: demo.load_demo(s, last_day, minutes, advance), write=True)
        progress.update(task, completed=sum(r.received for r in reports), total=sum(r.received for r in reports))
    table = Table("symbol", "interval", "bars", "first", "last", title="demo data (synthetic)")
    for r in reports:
        table.add_row(r.symbol, r.interval.value, f"{r.received:,}", r.first, r.last)
    console.print(table)
    users = Table("user", "role", "API key (shown once)", title="demo users (each trader has a 100,000 USD account)")
    for username, role, key in run_in_session(demo.load_demo_users, write=True):
        users.add_row(username, role, key or "exists already: `quantdesk users key NAME` issues a new key")
    console.print(users, soft_wrap=True)


def instruments_command(asset_class: Annotated[str | None, typer.Option(help="Filter by asset class")] = None) -> None:
    """List instruments with their last price."""
    from quantdesk.market import service

    views = run_in_session(lambda s: service.list_instruments(s, asset_class))
    table = Table("symbol", "name", "class", "currency", "last price", "at")
    for view in views:
        i, latest = view.instrument, view.latest
        table.add_row(
            i.symbol,
            i.name or "",
            i.asset_class or "",
            i.currency,
            f"{latest.close:,.{i.price_precision if i.price_precision is not None else 4}f}" if latest else "",
            f"{latest.ts:%Y-%m-%d %H:%M} ({latest.interval.value})" if latest else "",
        )
    console.print(table)


def bars_command(
    symbol: Annotated[str, typer.Argument(help="Instrument symbol")],
    interval: Annotated[str | None, typer.Option(help="Interval; the only stored one when omitted")] = None,
    start: Annotated[str | None, typer.Option(help="First day or instant (ISO 8601), inclusive")] = None,
    end: Annotated[str | None, typer.Option(help="Last day or instant (ISO 8601), inclusive")] = None,
    last: Annotated[int | None, typer.Option(help="Only the newest N bars")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write CSV here instead of printing")] = None,
) -> None:
    """Print stored bars, or export them as CSV with -o."""
    from quantdesk.market import service
    from quantdesk.market.rendering import bars_csv, iso_timestamps

    page = run_in_session(
        lambda s: service.query_bars(
            s, symbol, interval=interval, start=start, end=end, limit=last, descending=last is not None
        )
    )
    bars = page.bars.sorted()
    if output is not None:
        output.write_text(bars_csv(bars))
        console.print(f"wrote {len(bars):,} {page.interval.value} bars of {page.instrument.symbol} to {output}")
        return
    digits = page.instrument.price_precision if page.instrument.price_precision is not None else 4
    table = Table(
        "timestamp", "open", "high", "low", "close", "volume", title=f"{page.instrument.symbol} {page.interval.value}"
    )
    for ts, *values in zip(iso_timestamps(bars.ts), *(c.tolist() for c in bars.columns()[1:]), strict=True):
        table.add_row(ts, *(f"{v:,.{digits}f}" for v in values[:4]), f"{values[4]:,.0f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("bars")(bars_command)
    app.command("ingest")(ingest_command)
    app.command("fetch")(fetch_command)
    app.command("demo")(demo_command)
    app.command("instruments")(instruments_command)
