"""`quantdesk report instrument|backtest|forecast|walkforward ID -o FILE`."""

from pathlib import Path
from typing import Annotated, Literal

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.cli.runner import console, run_in_session
from quantdesk.core.config import get_settings


def report_command(
    kind: Annotated[
        Literal["instrument", "backtest", "forecast", "walkforward"], typer.Argument(help="What to report on")
    ],
    report_id: Annotated[str, typer.Argument(metavar="ID", help="A symbol (instrument) or an id")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (.pdf or .json)")] = Path("report.pdf"),
    format: Annotated[
        Literal["pdf", "json"] | None, typer.Option(help="pdf or json; from the file's suffix when omitted")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="Instrument reports: bar interval")] = None,
    start: Annotated[str | None, typer.Option(help="Instrument reports: first day")] = None,
    end: Annotated[str | None, typer.Option(help="Instrument reports: last day")] = None,
) -> None:
    """Write a report as PDF (A4, charts, page numbers) or JSON."""
    from quantdesk.accounts.service import LOCAL_OPERATOR
    from quantdesk.reports import service

    chosen = format or ("json" if output.suffix.lower() == ".json" else "pdf")

    async def work(session: AsyncSession) -> bytes:
        built = await service.build(session, kind, report_id, get_settings(), interval, start, end, LOCAL_OPERATOR)
        if chosen == "json":
            return built.report.model_dump_json(indent=2).encode()
        return await service.render_pdf(built)

    content = run_in_session(work)
    output.write_bytes(content)
    console.print(f"wrote {output} ({len(content):,} bytes)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
