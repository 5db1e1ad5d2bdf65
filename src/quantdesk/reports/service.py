"""Build a report of any kind, and render it as PDF (charts drawn first, then the document, off the loop)."""

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.service import Principal
from quantdesk.core.config import Settings
from quantdesk.core.errors import ValidationFailed
from quantdesk.core.types import MAX_ROW_ID
from quantdesk.reports import builders
from quantdesk.reports.model import Kind
from quantdesk.reports.walkforward import walkforward_report


def _number(kind: Kind, report_id: str) -> int:
    try:
        number = int(report_id)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_ROW_ID:
        raise ValidationFailed(f"a {kind} report takes the {kind}'s numeric id, not '{report_id}'")
    return number


async def build(
    session: AsyncSession,
    kind: Kind,
    report_id: str,
    settings: Settings,
    interval: str | None = None,
    start: str | None = None,
    end: str | None = None,
    caller: Principal | None = None,
) -> builders.Built:
    """``report_id`` is a symbol for an instrument report, a number otherwise; interval, start and end
    choose the instrument report's bars."""
    if kind == "instrument":
        return await builders.instrument_report(session, report_id, settings, interval, start, end)
    if kind == "backtest":
        return await builders.backtest_report(session, _number(kind, report_id), settings, caller)
    if kind == "walkforward":
        return await walkforward_report(session, _number(kind, report_id), caller)
    return await builders.forecast_report(session, _number(kind, report_id), settings)


async def render_pdf(built: builders.Built) -> bytes:
    from quantdesk.reports.pdf import render_pdf  # reportlab on demand

    images = {key: await make() for key, make in built.charts.items()}
    return await anyio.to_thread.run_sync(render_pdf, built.report, images)
