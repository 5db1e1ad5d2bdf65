"""GET /api/v1/reports/{kind}/{id}?format=json|pdf."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from quantdesk.accounts.auth import OptionalUser
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.market.intervals import Interval
from quantdesk.reports import service
from quantdesk.reports.model import Kind, Report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get(
    "/{kind}/{report_id}",
    response_model=Report,
    responses={200: {"content": {"application/pdf": {}}, "description": "The report as JSON, or as a PDF"}},
)
async def get_report(
    session: SessionDep,
    settings: SettingsDep,
    caller: OptionalUser,
    kind: Kind,
    report_id: str,
    format: Annotated[Literal["json", "pdf"], Query(description="json (default) or pdf")] = "json",
    interval: Annotated[Interval | None, Query(description="Instrument reports: the bar interval")] = None,
    start: Annotated[str | None, Query(description="Instrument reports: first day (ISO 8601)")] = None,
    end: Annotated[str | None, Query(description="Instrument reports: last day, inclusive")] = None,
) -> Report | Response:
    """A report of an instrument (by symbol), a backtest or a forecast (by id): parameters, tables and charts."""
    built = await service.build(
        session, kind, report_id, settings, interval.value if interval else None, start, end, caller
    )
    if format == "json":
        return built.report
    pdf = await service.render_pdf(built)
    filename = f"quantdesk-{kind}-{built.report.id}.pdf".replace("/", "-")
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )
