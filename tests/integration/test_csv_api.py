"""POST /api/v1/instruments/{symbol}/bars/csv with real export layouts and broken files."""

import asyncio
import threading
from typing import Any

import httpx
import pytest

from quantdesk.market import csv_formats
from quantdesk.market.intervals import Interval
from tests.factories import bars_as_csv, make_bars
from tests.unit.test_csv_formats import (
    BINANCE,
    METATRADER,
    STOOQ_BULK,
    STOOQ_WEB_INTRADAY,
    STOOQ_WEEKLY,
    YAHOO,
    YFINANCE_DOWNLOAD,
    YFINANCE_HISTORY_DAILY,
    YFINANCE_INTRADAY,
)

URL = "/api/v1/instruments/ACME/bars/csv"
CSV = {"content-type": "text/csv"}


@pytest.fixture
async def acme(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/api/v1/instruments", json={"symbol": "ACME"})).status_code == 201
    return client


async def all_bars(client: httpx.AsyncClient) -> list[str]:
    lines: list[str] = []
    for interval in Interval:
        response = await client.get(f"/api/v1/instruments/ACME/bars?interval={interval.value}&limit=100000&format=csv")
        lines += response.text.splitlines()[1:]
    return lines


@pytest.mark.parametrize(
    ("data", "fmt", "interval", "received"),
    [
        (YAHOO, "yahoo", "1d", 5),
        (YFINANCE_INTRADAY, "yahoo", "15m", 3),
        (STOOQ_BULK, "stooq", "5m", 2),
        (STOOQ_WEEKLY, "stooq", "1w", 2),
        (BINANCE, "binance", "1h", 2),
        (YFINANCE_DOWNLOAD, "yahoo", "1d", 2),
        (YFINANCE_HISTORY_DAILY, "yahoo", "1d", 3),
        (STOOQ_WEB_INTRADAY, "stooq", "5m", 2),
        (METATRADER, "metatrader", "1d", 2),
    ],
)
async def test_each_layout_is_detected_and_reported(acme: httpx.AsyncClient, data, fmt, interval, received):
    response = await acme.post(URL, content=data, headers=CSV)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["format"], body["interval"], body["interval_source"], body["inserted"]) == (
        fmt,
        interval,
        "inferred",
        received,
    )


async def test_multipart_upload_and_explicit_interval(acme: httpx.AsyncClient):
    data = bars_as_csv(make_bars(10)).encode()
    response = await acme.post(URL + "?interval=1d", files={"file": ("acme.csv", data, "text/csv")})
    assert response.status_code == 200
    assert response.json()["interval_source"] == "given"
    assert response.json()["inserted"] == 10


async def test_reupload_counts_unchanged_rows(acme: httpx.AsyncClient):
    data = bars_as_csv(make_bars(10)).encode()
    await acme.post(URL, content=data, headers=CSV)
    again = (await acme.post(URL, content=data, headers=CSV)).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 10)


async def test_hundred_thousand_rows_in_one_upload(acme: httpx.AsyncClient):
    data = bars_as_csv(make_bars(100_000, Interval.m1)).encode()
    response = await acme.post(URL, content=data, headers=CSV)
    assert response.status_code == 200
    assert response.json()["inserted"] == 100_000
    detail = (await acme.get("/api/v1/instruments/ACME")).json()
    assert detail["series"][0]["count"] == 100_000


BAD_FILES = {
    "missing column": (b"timestamp,open,high,low\n2024-01-01,1,2,0.5\n", 422, "missing column"),
    "extra column": (b"timestamp,open,high,low,close,volume,foo\n2024-01-01,1,2,0.5,1,1,x\n", 422, "unexpected column"),
    "extra field": (b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,1,9\n", 422, "Expected 6 fields"),
    "bad number": (b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,one,1\n", 422, "is not a number"),
    "bad date": (
        b"timestamp,open,high,low,close,volume\n01/02/2024,1,2,0.5,1,1\n2024-01-03,1,2,0.5,1,1\n",
        422,
        "is not a date",
    ),
    "high below low": (
        b"timestamp,open,high,low,close,volume\n2024-01-01,1,0.5,2,1,1\n2024-01-02,1,2,0.5,1,1\n",
        422,
        "is below low",
    ),
    "duplicate timestamps": (
        b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,1\n2024-01-02,1,2,0.5,1,1\n2024-01-01,1,2,0.5,1,1\n",
        422,
        "duplicate timestamp",
    ),
    "mixed time zones": (
        b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00+00:00,1,2,0.5,1,1\n2024-01-02T00:00:00,1,2,0.5,1,1\n",
        422,
        "mix time zones",
    ),
    "empty": (b"", 422, "empty"),
    "binary": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4, 415, "binary"),
    "misaligned": (
        b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1,1\n2024-01-02T00:00:00Z,1,2,0.5,1,1\n2024-01-03T00:30:00Z,1,2,0.5,1,1\n",
        422,
        "not aligned",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_bad_files_are_refused_and_nothing_stored_changes(acme: httpx.AsyncClient, case: str):
    await acme.post(URL, content=bars_as_csv(make_bars(5)).encode(), headers=CSV)
    before = await all_bars(acme)
    data, status, message = BAD_FILES[case]
    response = await acme.post(URL, content=data, headers=CSV)
    assert response.status_code == status, response.text
    assert message in response.text
    assert await all_bars(acme) == before


async def test_bad_rows_are_listed_with_their_file_lines(acme: httpx.AsyncClient):
    data = b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,1\n2024-01-02,1,2,0.5,5,1\n"
    errors = (await acme.post(URL, content=data, headers=CSV)).json()["errors"]
    assert errors == [
        {"row": 2, "line": 3, "field": "close", "reason": "close 5 is outside the bar's range low 0.5 .. high 2"}
    ]


async def test_json_sent_to_the_csv_endpoint_is_unsupported(acme: httpx.AsyncClient):
    response = await acme.post(URL, json=[{"timestamp": "2024-01-01"}])
    assert response.status_code == 415


async def test_a_form_without_a_file_says_so(acme: httpx.AsyncClient):
    body = b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file here\r\n--xyz--\r\n'
    response = await acme.post(URL, content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 422
    assert "no file" in response.json()["detail"]


async def test_curl_data_binary_without_a_content_type_is_read_as_the_file(acme: httpx.AsyncClient):
    data = bars_as_csv(make_bars(3)).encode()
    form = {"content-type": "application/x-www-form-urlencoded"}  # what curl --data-binary sends by default
    response = await acme.post(URL, content=data, headers=form)
    assert response.status_code == 200
    assert response.json()["inserted"] == 3


async def test_curl_d_which_strips_newlines_gets_a_hint(acme: httpx.AsyncClient):
    flattened = bars_as_csv(make_bars(3)).replace("\n", "").encode()
    response = await acme.post(URL, content=flattened, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert "--data-binary" in response.json()["detail"]


async def test_unknown_symbol_and_create(client: httpx.AsyncClient):
    data = bars_as_csv(make_bars(3)).encode()
    assert (await client.post("/api/v1/instruments/NEW/bars/csv", content=data, headers=CSV)).status_code == 404
    created = await client.post("/api/v1/instruments/NEW/bars/csv?create=true", content=data, headers=CSV)
    assert created.status_code == 200


async def test_regression_absurd_epoch_is_out_of_range_not_wrapped(acme: httpx.AsyncClient):
    data = (
        b"timestamp,open,high,low,close,volume\n"
        b"1000000000000000000000000000000,1,2,0.5,1,1\n-1000000000000000000000000000000,1,2,0.5,1,1\n"
    )
    response = await acme.post(URL + "?interval=1d", content=data, headers=CSV)
    assert response.status_code == 422
    reasons = [e["reason"] for e in response.json()["errors"]]
    assert reasons == ["timestamp is outside the years 1 to 9999"] * 2


async def test_rows_that_all_share_one_timestamp_say_so(acme: httpx.AsyncClient):
    data = b"timestamp,open,high,low,close,volume\n" + b"2024-01-01,1,2,0.5,1,1\n" * 3
    response = await acme.post(URL, content=data, headers=CSV)
    assert response.status_code == 422
    assert "3 rows share one timestamp" in response.json()["detail"]


async def test_regression_concurrent_uploads_all_succeed(client: httpx.AsyncClient):
    """Deferred SQLite transactions that read, then write, failed at once when another writer won."""
    symbols = [f"C{i}" for i in range(6)]
    for symbol in symbols:
        await client.post("/api/v1/instruments", json={"symbol": symbol})
    payloads = [bars_as_csv(make_bars(5_000, Interval.m1, seed=i)).encode() for i in range(len(symbols))]
    responses = await asyncio.gather(
        *(
            client.post(f"/api/v1/instruments/{symbol}/bars/csv", content=payload, headers=CSV)
            for symbol, payload in zip(symbols, payloads, strict=True)
        )
    )
    assert [r.status_code for r in responses] == [200] * len(symbols)
    assert all(r.json()["inserted"] == 5_000 for r in responses)


async def test_a_header_of_a_hundred_thousand_columns_is_refused_at_once(acme: httpx.AsyncClient):
    wide = ",".join(f"c{n}" for n in range(100_000)) + "\n" + ",".join("1" for _ in range(100_000)) + "\n"
    response = await acme.post(URL, content=wide, headers=CSV)
    assert response.status_code == 422, response.text
    assert "100,000 fields; a bar file has at most 64 columns" in response.json()["detail"]


async def test_the_server_answers_while_an_upload_is_parsed(
    acme: httpx.AsyncClient, anonymous: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    """Parsing runs off the event loop: held in the middle of a parse, the upload keeps nobody waiting."""
    parsing, health_answered = threading.Event(), threading.Event()

    def slow_parse(data: bytes) -> Any:
        parsing.set()
        assert health_answered.wait(30), "/health did not answer while a file was parsed"
        return csv_formats.parse_csv(data)

    monkeypatch.setattr("quantdesk.market.ingest.parse_csv", slow_parse)
    upload = asyncio.create_task(acme.post(URL, content=bars_as_csv(make_bars(50)), headers=CSV))
    assert await asyncio.to_thread(parsing.wait, 30)
    health = await asyncio.wait_for(anonymous.get("/health"), 30)
    assert health.status_code == 200
    assert not upload.done()
    health_answered.set()
    assert (await upload).status_code in (200, 201)
