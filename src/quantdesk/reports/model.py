"""The report model: what a report says, independent of how it is rendered.

JSON renders it as it is (charts as links to the PNG endpoints that draw them, where there is one); the
PDF renders the same blocks in order, with each chart's PNG drawn for it.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

Cell = str | float | int | None
Kind = Literal["instrument", "backtest", "forecast", "walkforward"]


class Paragraph(BaseModel):
    type: Literal["paragraph"] = "paragraph"
    text: str


class Table(BaseModel):
    type: Literal["table"] = "table"
    title: str
    columns: list[str]
    rows: list[list[Cell]]


class Chart(BaseModel):
    type: Literal["chart"] = "chart"
    key: str = Field(description="Which chart; the PDF draws it, JSON links to it where an endpoint draws it.")
    title: str
    href: str | None = None


Block = Annotated[Paragraph | Table | Chart, Field(discriminator="type")]


class Section(BaseModel):
    heading: str
    blocks: list[Block]


class Parameter(BaseModel):
    name: str
    value: str


class Report(BaseModel):
    kind: Kind
    id: str
    title: str
    subject: str = Field(description="What the report is about, in a line.")
    generated_at: datetime
    parameters: list[Parameter]
    sections: list[Section]

    def charts(self) -> list[Chart]:
        return [block for section in self.sections for block in section.blocks if isinstance(block, Chart)]
