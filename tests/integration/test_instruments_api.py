"""CRUD on /api/v1/instruments, with last prices and stored ranges."""

import httpx

from quantdesk.market.intervals import Interval
from tests.factories import bars_as_json, make_bars

ACME = {
    "symbol": "acme",
    "name": "Acme Corp",
    "asset_class": "stock",
    "currency": "usd",
    "exchange": "XNYS",
    "price_precision": 2,
}


async def test_create_then_read_an_instrument(client: httpx.AsyncClient):
    created = await client.post("/api/v1/instruments", json=ACME)
    assert created.status_code == 201
    body = created.json()
    assert body["symbol"] == "ACME"
    assert body["currency"] == "USD"
    assert body["last_price"] is None
    detail = (await client.get("/api/v1/instruments/Acme")).json()
    assert detail["name"] == "Acme Corp"
    assert detail["series"] == []


async def test_symbol_is_the_only_required_field(client: httpx.AsyncClient):
    body = (await client.post("/api/v1/instruments", json={"symbol": "X"})).json()
    assert body["asset_class"] is None
    assert body["currency"] == "USD"


async def test_symbols_are_unique_case_insensitively(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "acme"})
    again = await client.post("/api/v1/instruments", json={"symbol": "ACME"})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_invalid_fields_are_422_with_their_location(client: httpx.AsyncClient):
    response = await client.post(
        "/api/v1/instruments", json={"symbol": "EUR/USD", "asset_class": "bond", "price_precision": 40}
    )
    assert response.status_code == 422
    locations = {e["loc"] for e in response.json()["errors"]}
    assert locations == {"body.symbol", "body.asset_class", "body.price_precision"}


async def test_update_and_rename(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json=ACME)
    await client.post("/api/v1/instruments", json={"symbol": "TAKEN"})
    renamed = await client.patch("/api/v1/instruments/acme", json={"symbol": "acme2", "name": "Acme II"})
    assert renamed.status_code == 200
    assert renamed.json()["symbol"] == "ACME2"
    clash = await client.patch("/api/v1/instruments/acme2", json={"symbol": "taken"})
    assert clash.status_code == 409
    null_currency = await client.patch("/api/v1/instruments/acme2", json={"currency": None})
    assert null_currency.status_code == 422


async def test_unknown_symbol_is_404_with_a_hint(client: httpx.AsyncClient):
    for method, path in [
        ("GET", "/api/v1/instruments/NOPE"),
        ("PATCH", "/api/v1/instruments/NOPE"),
        ("DELETE", "/api/v1/instruments/NOPE"),
        ("GET", "/api/v1/instruments/NOPE/bars"),
    ]:
        response = await client.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
        assert "POST /api/v1/instruments" in response.json()["detail"]


async def test_list_shows_the_last_price_of_the_most_recent_bar(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json=ACME)
    await client.post("/api/v1/instruments", json={"symbol": "EMPTY", "asset_class": "fx"})
    daily = make_bars(30)
    await client.post("/api/v1/instruments/ACME/bars?interval=1d", json=bars_as_json(daily))
    listed = {i["symbol"]: i for i in (await client.get("/api/v1/instruments")).json()}
    assert listed["ACME"]["last_price"] == daily.close[-1]
    assert listed["ACME"]["last_price_at"] == "2024-01-30T00:00:00Z"
    assert listed["EMPTY"]["last_price"] is None
    only_fx = (await client.get("/api/v1/instruments?asset_class=fx")).json()
    assert [i["symbol"] for i in only_fx] == ["EMPTY"]


async def test_detail_lists_range_and_count_per_interval(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json=ACME)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(5)))
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(120, interval=Interval.m1)))
    detail = (await client.get("/api/v1/instruments/ACME")).json()
    assert detail["series"] == [
        {"interval": "1m", "first": "2024-01-01T00:00:00Z", "last": "2024-01-01T01:59:00Z", "count": 120},
        {"interval": "1d", "first": "2024-01-01T00:00:00Z", "last": "2024-01-05T00:00:00Z", "count": 5},
    ]
    # the 1d bar of Jan 5 closes after the last 1m bar, so it is the latest price
    assert detail["last_price_interval"] == "1d"


async def test_delete_removes_the_instrument_and_its_bars(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json=ACME)
    await client.post("/api/v1/instruments/ACME/bars", json=bars_as_json(make_bars(5)))
    assert (await client.delete("/api/v1/instruments/ACME")).status_code == 204
    assert (await client.get("/api/v1/instruments/ACME")).status_code == 404
    await client.post("/api/v1/instruments", json=ACME)
    assert (await client.get("/api/v1/instruments/ACME")).json()["series"] == []


async def test_regression_text_that_is_not_unicode_is_a_422(client: httpx.AsyncClient):
    await client.post("/api/v1/instruments", json={"symbol": "ACME"})
    lone_surrogate = b'{"symbol": "\\ud800"}'  # JSON may escape one; no UTF-8 text can hold it
    headers = {"content-type": "application/json"}
    for method, path in (("POST", "/api/v1/instruments"), ("PATCH", "/api/v1/instruments/ACME")):
        response = await client.request(method, path, content=lone_surrogate, headers=headers)
        assert response.status_code == 422, response.text
        assert "symbol '\\\\ud800' is not valid" in response.text
    named = await client.request(
        "PATCH", "/api/v1/instruments/ACME", content=b'{"name": "Acme \\udfff"}', headers=headers
    )
    assert named.status_code == 422, named.text
    assert (await client.get("/api/v1/instruments/ACME")).json()["name"] is None
