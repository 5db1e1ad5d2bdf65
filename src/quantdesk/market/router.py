"""HTTP endpoints of the market-data domain under /api/v1/instruments."""

from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from starlette.formparsers import MultiPartException, MultiPartParser

from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import UnsupportedMediaType, ValidationFailed
from quantdesk.market import ingest, service
from quantdesk.market.intervals import Interval
from quantdesk.market.rendering import bars_response, detail_schema, ingest_schema, instrument_schema
from quantdesk.market.schemas import (
    BarIn,
    BarPage,
    IngestResult,
    InstrumentCreate,
    InstrumentDetail,
    InstrumentRead,
    InstrumentUpdate,
)

router = APIRouter(prefix="/api/v1/instruments", tags=["market data"])

IntervalQuery = Annotated[
    Interval | None,
    Query(description="Bar interval; inferred from the timestamps' spacing when omitted (ingest)."),
]
CreateQuery = Annotated[bool, Query(description="Create the instrument if it does not exist yet.")]
CSV_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A CSV file as the raw body (text/csv) or as the one file of a multipart form.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


@router.get("", response_model=list[InstrumentRead])
async def list_instruments(
    session: SessionDep, asset_class: Annotated[str | None, Query()] = None
) -> list[InstrumentRead]:
    views = await service.list_instruments(session, asset_class)
    return [instrument_schema(view) for view in views]


@router.post("", response_model=InstrumentRead, status_code=status.HTTP_201_CREATED)
async def create_instrument(session: SessionDep, body: InstrumentCreate) -> InstrumentRead:
    instrument = await service.create_instrument(session, body)
    return instrument_schema(service.InstrumentView(instrument, None))


@router.get("/{symbol}", response_model=InstrumentDetail)
async def get_instrument(session: SessionDep, symbol: str) -> InstrumentDetail:
    return detail_schema(await service.describe_instrument(session, symbol))


@router.patch("/{symbol}", response_model=InstrumentRead)
async def update_instrument(session: SessionDep, symbol: str, body: InstrumentUpdate) -> InstrumentRead:
    instrument = await service.update_instrument(session, symbol, body)
    return instrument_schema(service.InstrumentView(instrument, None))


@router.delete("/{symbol}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_instrument(session: SessionDep, symbol: str) -> Response:
    await service.delete_instrument(session, symbol)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{symbol}/bars",
    response_model=BarPage,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with X-Next-Cursor"}},
)
async def get_bars(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    symbol: str,
    interval: IntervalQuery = None,
    start: Annotated[str | None, Query(description="Inclusive ISO 8601 date or datetime (UTC if naive).")] = None,
    end: Annotated[str | None, Query(description="Inclusive; a date covers the whole day.")] = None,
    limit: Annotated[int, Query(ge=1, description="Bars per page (at most QUANTDESK_MAX_BARS_PER_PAGE).")] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    format: Annotated[Literal["json", "csv"] | None, Query(description="Overrides the Accept header.")] = None,
) -> Response:
    if limit > settings.max_bars_per_page:
        raise ValidationFailed(f"limit={limit} is above the maximum of {settings.max_bars_per_page}; page with cursor=")
    page = await service.query_bars(
        session,
        symbol,
        interval=interval,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        descending=order == "desc",
    )
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    return bars_response(page, as_csv=wants_csv)


@router.post("/{symbol}/bars", response_model=IngestResult)
async def post_bars(
    session: SessionDep, symbol: str, bars: list[BarIn], interval: IntervalQuery = None, create: CreateQuery = False
) -> IngestResult:
    """Store a JSON array of bars atomically: all of them, or none and a 422 listing each bad row."""
    report = await ingest.ingest_json(session, symbol, bars, interval, create)
    return ingest_schema(report)


@router.post("/{symbol}/bars/csv", response_model=IngestResult, openapi_extra=CSV_BODY_DOC)
async def post_bars_csv(
    request: Request, session: SessionDep, symbol: str, interval: IntervalQuery = None, create: CreateQuery = False
) -> IngestResult:
    """Store a Yahoo, Stooq, Binance or plain CSV; the response says which layout and interval it used."""
    data = await _csv_payload(request)
    report = await ingest.ingest_csv(session, symbol, data, interval, create)
    return ingest_schema(report)


async def _csv_payload(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/json"):
        raise UnsupportedMediaType(
            "this endpoint takes a CSV file, not JSON: send it as the raw body (text/csv) or as the file "
            "of a multipart form; JSON bars go to /api/v1/instruments/{symbol}/bars"
        )
    body = b"".join([chunk async for chunk in request.stream()])
    if content_type.startswith("multipart/form-data"):
        return await _multipart_file(request, body)
    # Any other type is taken as the raw file: `curl --data-binary @file.csv` labels it as a form.
    if content_type.startswith("application/x-www-form-urlencoded") and b"\n" not in body.strip():
        raise ValidationFailed(
            "the body is a single line: `curl -d` strips newlines from files; use --data-binary @file.csv "
            "or -F file=@file.csv"
        )
    return body


async def _multipart_file(request: Request, body: bytes) -> bytes:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=10).parse()
    except MultiPartException as exc:
        raise ValidationFailed(f"the multipart form is malformed: {exc.message}") from None
    try:
        files = [value for _, value in form.multi_items() if not isinstance(value, str)]
        if not files:
            raise ValidationFailed("the multipart form has no file; send the CSV as a file field named 'file'")
        return await files[0].read()
    finally:
        await form.close()
