"""The PDF rendering of a report with reportlab: A4, a title block with what, when and the parameters,
charts as images, tables that split across pages with their header repeated, and "page X of Y"."""

import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.tables import LongTable

from quantdesk.reports import model

MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN
STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=STYLES["BodyText"], fontSize=9.5, leading=12.5)
CELL = ParagraphStyle("cell", parent=BODY, fontSize=8, leading=9.5)
NUMBER = ParagraphStyle("number", parent=CELL, alignment=TA_RIGHT)
HEADER = ParagraphStyle("header", parent=CELL, fontName="Helvetica-Bold")
# Headings and the titles of tables and charts never end a page: they move with what follows them.
HEADING = ParagraphStyle("heading", parent=STYLES["Heading2"], keepWithNext=1)
CAPTION = ParagraphStyle("caption", parent=BODY, fontName="Helvetica-Bold", keepWithNext=1, spaceAfter=4)
GRID = colors.HexColor("#d1d5db")
SHADE = colors.HexColor("#f3f4f6")


def format_cell(value: model.Cell) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    return value


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
    """Draws "page X of Y" once the page count is known (reportlab's two-pass recipe)."""

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer = footer

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for page in self._pages:
            self.__dict__.update(page)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.HexColor("#6b7280"))
            self.drawString(MARGIN, 9 * mm, self._footer)
            self.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {self._pageNumber} of {len(self._pages)}")
            super().showPage()
        super().save()


def _title_block(report: model.Report) -> list[Flowable]:
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    rows = [[Paragraph("<b>report</b>", CELL), Paragraph(f"{report.kind} {_escape(report.id)}", CELL)]]
    rows.append([Paragraph("<b>generated</b>", CELL), Paragraph(generated, CELL)])
    rows += [
        [Paragraph(f"<b>{_escape(p.name)}</b>", CELL), Paragraph(_escape(p.value), CELL)] for p in report.parameters
    ]
    table = Table(rows, colWidths=[40 * mm, WIDTH - 40 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [
        Paragraph(_escape(report.title), STYLES["Title"]),
        Paragraph(_escape(report.subject), BODY),
        Spacer(1, 4 * mm),
        table,
        Spacer(1, 6 * mm),
    ]


def _table(block: model.Table) -> list[Flowable]:
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in block.rows) for i in range(len(block.columns))
    ]
    header = [Paragraph(_escape(c), HEADER) for c in block.columns]
    body = [
        [Paragraph(_escape(format_cell(cell)), NUMBER if numeric[i] else CELL) for i, cell in enumerate(row)]
        for row in block.rows
    ]
    table = LongTable([header, *body], repeatRows=1, hAlign="LEFT", colWidths=_widths(block))
    style = [
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    style += [("BACKGROUND", (0, r), (-1, r), SHADE) for r in range(2, len(body) + 1, 2)]
    table.setStyle(TableStyle(style))
    title = Paragraph(_escape(block.title), CAPTION)
    if not body:
        return [title, Paragraph("none", BODY), Spacer(1, 4 * mm)]
    return [title, table, Spacer(1, 5 * mm)]


CHAR_PT, PADDING_PT = 4.5, 12.0  # an 8-point character, and a cell's left and right padding


def _widths(block: model.Table) -> list[float]:
    """Wide enough for each column's longest text where the page allows; shrunk in proportion where not."""
    wanted = [
        max([len(block.columns[i]), *(len(format_cell(row[i])) for row in block.rows)]) * CHAR_PT + PADDING_PT
        for i in range(len(block.columns))
    ]
    total = sum(wanted)
    return [w * WIDTH / total for w in wanted] if total > WIDTH else wanted


def _chart(block: model.Chart, png: bytes | None) -> list[Flowable]:
    if png is None:
        return [Paragraph(f"<i>{_escape(block.title)}: not available</i>", BODY)]
    image = Image(io.BytesIO(png))
    scale = WIDTH / image.imageWidth
    image.drawWidth, image.drawHeight = WIDTH, image.imageHeight * scale
    return [Paragraph(_escape(block.title), CAPTION), image, Spacer(1, 4 * mm)]


def _blocks(blocks: Sequence[model.Block], images: dict[str, bytes]) -> list[Flowable]:
    out: list[Flowable] = []
    for block in blocks:
        if isinstance(block, model.Paragraph):
            out += [Paragraph(_escape(block.text), BODY), Spacer(1, 2 * mm)]
        elif isinstance(block, model.Table):
            out += _table(block)
        else:
            out += _chart(block, images.get(block.key))
    return out


def render_pdf(report: model.Report, images: dict[str, bytes]) -> bytes:
    """The report as PDF bytes; ``images`` holds each chart's PNG by its key."""
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=report.title,
        author="quantdesk",
        subject=report.subject,
        invariant=True,
    )
    story = _title_block(report)
    for section in report.sections:
        story += [Paragraph(_escape(section.heading), HEADING), *_blocks(section.blocks, images)]
    footer = f"quantdesk · {report.title} · {report.generated_at:%Y-%m-%d %H:%M} UTC"

    def canvas(*args: Any, **kwargs: Any) -> NumberedCanvas:
        return NumberedCanvas(*args, footer=footer, **kwargs)

    document.build(story, canvasmaker=canvas)
    return out.getvalue()
