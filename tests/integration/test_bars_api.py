"""Ingest JSON bars atomically, and read them back in pages as JSON or CSV."""

from typing import Any

import httpx
import pytest

from quantdesk.market.intervals import Interval
from tests.factories import bar_row, bars_as_json, make_bars


async def make_instrument(client: httpx.AsyncClient, symbol: str = "ACME") -> None:
    assert (await client.post("/api/v1/instruments", json={"symbol": symbol})).status_code == 201


async def stored(client: httpx.AsyncClient, symbol: str = "ACME", interval: str = "1d") -> Any:
    return (await client.get(f"/api/v1/instruments/{symbol}/bars?interval={interval}&limit=100000")).json()["bars"]


async def test_ingest_infers_the_interval_and_counts_inserts(client: httpx.AsyncClient):
    await make_instrument(client)
    bars = make_bars(20, weekdays_only=True)
    response = await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(bars))
    assert response.status_code == 200
    body = response.json()
    assert body | {"notes": None} == {
        "symbol": "ACME",
        "interval": "1d",
        "interval_source": "inferred",
        "format": None,
        "received": 20,
        "inserted": 20,
        "updated": 0,
        "unchanged": 0,
        "first": "2024-01-01T00:00:00Z",
        "last": "2024-01-26T00:00:00Z",
        "notes": None,
    }
    assert len(await stored(client)) == 20


async def test_reingesting_updates_instead_of_duplicating(client: httpx.AsyncClient):
    await make_instrument(client)
    rows = bars_as_json(make_bars(10))
    await client.post("/api/v1/instruments/ACME/bars", json=rows)
    rows[3]["close"] = rows[3]["low"]
    rows.append(bar_row("2024-01-11T00:00:00Z"))
    again = (await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=rows)).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (1, 1, 9)
    assert again["interval_source"] == "given"
    bars = await stored(client)
    assert len(bars) == 11
    assert bars[3]["close"] == rows[3]["close"]


async def test_a_bad_row_rejects_the_whole_request_and_changes_nothing(client: httpx.AsyncClient):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(5)))
    before = await stored(client)
    rows = bars_as_json(make_bars(5, seed=99))
    rows[1]["high"] = rows[1]["low"] / 2
    rows[4]["timestamp"] = "2024-01-05T12:00:00Z"
    response = await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=rows)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "high"), (5, "timestamp")]
    assert "not aligned to 1d" in errors[1]["reason"]
    assert await stored(client) == before


async def test_type_errors_in_rows_are_listed_by_row(client: httpx.AsyncClient):
    await make_instrument(client)
    rows = [bar_row(), bar_row("2024-01-02", o="abc"), bar_row("2024-01-03", c=float("inf"))]
    response = await client.post(
        "/api/v1/instruments/ACME/bars", content=_json_with_inf(rows), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert {(e["row"], e["field"]) for e in response.json()["errors"]} >= {(2, "open")}


def _json_with_inf(rows: list[dict[str, Any]]) -> bytes:
    import json

    return json.dumps(rows).encode()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no bars to store"),
        ([bar_row("2024-01-01T00:00:00Z"), bar_row("2024-01-02T00:00:00")], "mix time zones"),
        (
            [bar_row("2024-01-01T00:00:00Z"), bar_row("2024-01-02T00:00:00Z"), bar_row("2024-01-02T00:00:00Z")],
            "duplicate timestamp",
        ),
        ([bar_row()], "fewer than two"),
    ],
)
async def test_json_bad_input(client: httpx.AsyncClient, rows, message):
    await make_instrument(client)
    response = await client.post("/api/v1/instruments/ACME/bars", json=rows)
    assert response.status_code == 422
    assert message in response.text
    assert await stored(client) == []


async def test_a_single_bar_needs_its_interval_named(client: httpx.AsyncClient):
    await make_instrument(client)
    response = await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=[bar_row()])
    assert response.status_code == 200
    assert response.json()["inserted"] == 1


async def test_unknown_symbol_is_404_unless_create_is_asked(client: httpx.AsyncClient):
    rows = bars_as_json(make_bars(3))
    assert (await client.post("/api/v1/instruments/NEW/bars", json=rows)).status_code == 404
    created = await client.post("/api/v1/instruments/NEW/bars?create=true", json=rows)
    assert created.status_code == 200
    assert created.json()["inserted"] == 3


async def test_pages_follow_the_cursor_to_the_end(client: httpx.AsyncClient):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(25)))
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/instruments/ACME/bars?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        seen += [b["timestamp"] for b in page["bars"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 25
    assert seen == sorted(seen)


async def test_range_order_and_limit(client: httpx.AsyncClient):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(31)))
    page = (await client.get("/api/v1/instruments/ACME/bars?start=2024-01-10&end=2024-01-12")).json()
    assert [b["timestamp"][:10] for b in page["bars"]] == ["2024-01-10", "2024-01-11", "2024-01-12"]
    latest = (await client.get("/api/v1/instruments/ACME/bars?order=desc&limit=2")).json()
    assert [b["timestamp"][:10] for b in latest["bars"]] == ["2024-01-31", "2024-01-30"]
    older = (
        await client.get(f"/api/v1/instruments/ACME/bars?order=desc&limit=2&cursor={latest['next_cursor']}")
    ).json()
    assert [b["timestamp"][:10] for b in older["bars"]] == ["2024-01-29", "2024-01-28"]
    empty = (await client.get("/api/v1/instruments/ACME/bars?start=2030-01-01")).json()
    assert empty["bars"] == []
    assert empty["next_cursor"] is None


async def test_csv_output_by_accept_header_or_format(client: httpx.AsyncClient):
    await make_instrument(client)
    bars = make_bars(3)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(bars))
    by_accept = await client.get("/api/v1/instruments/ACME/bars", headers={"accept": "text/csv"})
    by_format = await client.get("/api/v1/instruments/ACME/bars?format=csv&limit=2")
    assert by_accept.headers["content-type"].startswith("text/csv")
    lines = by_accept.text.splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume"
    expected = [float(column[0]) for column in bars.columns()[1:]]
    assert lines[1] == "2024-01-01T00:00:00Z," + ",".join(map(repr, expected))
    assert len(by_format.text.splitlines()) == 3
    assert by_format.headers["x-next-cursor"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("start=2024-02-01&end=2024-01-01", 422, "after end"),
        ("start=yesterday", 422, "not a date"),
        ("cursor=%%%", 422, "cursor is not valid"),
        ("interval=2h", 422, "interval"),
        ("limit=0", 422, "limit"),
        ("limit=100001", 422, "above the maximum"),
        ("format=xml", 422, "format"),
    ],
)
async def test_bad_queries(client: httpx.AsyncClient, query, status, message):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(3)))
    response = await client.get(f"/api/v1/instruments/ACME/bars?{query}")
    assert response.status_code == status
    assert message in response.text


async def test_interval_must_be_named_when_several_are_stored(client: httpx.AsyncClient):
    await make_instrument(client)
    assert (await client.get("/api/v1/instruments/ACME/bars")).status_code == 404  # no bars yet
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(3)))
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(3, Interval.h1)))
    response = await client.get("/api/v1/instruments/ACME/bars")
    assert response.status_code == 422
    assert "several intervals (1h, 1d)" in response.json()["detail"]


async def test_series_of_different_instruments_never_mix(client: httpx.AsyncClient):
    await make_instrument(client, "AAA")
    await make_instrument(client, "BBB")
    await client.post("/api/v1/instruments/AAA/bars", json=bars_as_json(make_bars(5, seed=1)))
    await client.post("/api/v1/instruments/BBB/bars", json=bars_as_json(make_bars(5, seed=2)))
    a = await stored(client, "AAA")
    b = await stored(client, "BBB")
    assert len(a) == len(b) == 5
    assert a != b


async def test_regression_end_on_the_last_representable_day_is_not_a_500(client: httpx.AsyncClient):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(3)))
    response = await client.get("/api/v1/instruments/ACME/bars?start=0001-01-01&end=9999-12-31")
    assert response.status_code == 200
    assert response.json()["count"] == 3


async def test_regression_a_cursor_beyond_any_date_is_invalid_not_a_500(client: httpx.AsyncClient):
    from quantdesk.market.service import encode_cursor

    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(3)))
    response = await client.get(f"/api/v1/instruments/ACME/bars?cursor={encode_cursor(10**20)}")
    assert response.status_code == 422
    assert "cursor is not valid" in response.json()["detail"]


async def test_regression_an_invalid_symbol_to_create_is_422_not_500(client: httpx.AsyncClient):
    response = await client.post("/api/v1/instruments/A%20B/bars?create=true&interval=1d", json=[bar_row()])
    assert response.status_code == 422
    assert "symbol 'A B' is not valid" in response.json()["detail"]


@pytest.mark.parametrize("path", ["bars", "stats", "enriched", "chart.png"])
@pytest.mark.parametrize(
    "query",
    [
        "end=9999-12-31T23:59:59-01:00",
        "start=0001-01-01T00:00:00%2B01:00",
        "start=0001-01-01T00:30:00%2B01:00&end=9999-12-31T23:00:00-01:00",
    ],
)
async def test_regression_bounds_past_the_years_1_to_9999_in_utc_bound_nothing(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, path: str, query: str
):
    await make_instrument(client)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(60)))
    response = await anonymous.get(f"/api/v1/instruments/ACME/{path}?{query}")
    assert response.status_code == 200, response.text


async def test_regression_a_bar_on_the_last_representable_day_is_stored(client: httpx.AsyncClient):
    await make_instrument(client)
    last_day = [bar_row(ts="9999-12-31")]
    response = await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=last_day)
    assert response.status_code in (200, 201), response.text
    assert (await stored(client))[0]["timestamp"].startswith("9999-12-31")


@pytest.mark.parametrize("value", [1e300, 1e20])
async def test_regression_prices_beyond_the_columns_are_refused_by_name(client: httpx.AsyncClient, value: float):
    await make_instrument(client)
    row = bar_row(o=value, h=value, lo=value, c=value)
    response = await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=[row])
    assert response.status_code == 422, response.text
    assert "must stay below 10^20" in response.json()["detail"]
