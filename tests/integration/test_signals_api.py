"""POST /api/v1/signals/parse: the parser over HTTP, whatever the content type says."""

import httpx


async def test_text_and_json_bodies_are_read_from_the_body(client: httpx.AsyncClient, anonymous: httpx.AsyncClient):
    text = await client.post(
        "/api/v1/signals/parse",
        content="XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025",
        headers={"content-type": "text/plain"},
    )
    assert text.status_code == 200, text.text
    assert text.json() == {
        "side": "buy",
        "symbol": "XAUUSD",
        "entry": "2015.50000000",
        "stop_loss": "2010.00000000",
        "take_profit": ["2020.00000000", "2025.00000000"],
        "stop_loss_distance": None,
        "take_profit_distances": [],
        "quantity": None,
        "order_type": "market",
        "signal_id": None,
        "format": "text",
    }
    # JSON sent as text/plain (TradingView does when a value breaks nothing) is still JSON.
    json_as_text = await client.post(
        "/api/v1/signals/parse",
        content='{"action": "sell", "ticker": "ES1!", "contracts": "2", "market_position": "flat"}',
        headers={"content-type": "text/plain"},
    )
    assert (json_as_text.json()["side"], json_as_text.json()["format"]) == ("close", "json")
    refused = await client.post("/api/v1/signals/parse", content="BUY {{ticker}}")
    assert refused.status_code == 422
    assert "placeholder" in refused.json()["detail"]
    assert (await anonymous.post("/api/v1/signals/parse", content="BUY EURUSD")).status_code == 401
