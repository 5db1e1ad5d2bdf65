"""POST /webhooks/{token} and its tokens: what TradingView sends, resends, and what nobody should send."""

import json

import httpx

from tests.integration.signal_helpers import send, settled, webhook_path
from tests.integration.trading_helpers import books, open_account


async def test_tokens_are_shown_once_listed_by_prefix_rotated_and_revoked(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    account = await open_account(alice)
    created = await alice.post(f"/api/v1/accounts/{account}/webhooks", json={"label": "tv"})
    assert created.status_code == 201, created.text
    token, url = created.json()["token"], created.json()["url"]
    assert url == f"http://testserver/webhooks/{token}"
    assert token.startswith(created.json()["prefix"])
    listed = (await alice.get(f"/api/v1/accounts/{account}/webhooks")).json()
    assert [row["label"] for row in listed] == ["tv"]
    assert "token" not in listed[0]
    assert (await send(anonymous, f"/webhooks/{token}", "BUY ACME")).status_code == 202  # no header needed

    rotated = await alice.post(f"/api/v1/accounts/{account}/webhooks/{created.json()['id']}/rotate")
    assert rotated.status_code == 201, rotated.text
    assert (await send(anonymous, f"/webhooks/{token}", "BUY ACME qty 2")).status_code == 404
    new_token = rotated.json()["token"]
    assert (await send(anonymous, f"/webhooks/{new_token}", "BUY ACME qty 2")).status_code == 202
    revoked = await alice.delete(f"/api/v1/accounts/{account}/webhooks/{rotated.json()['id']}")
    assert revoked.status_code == 204
    assert (await send(anonymous, f"/webhooks/{new_token}", "BUY ACME qty 3")).status_code == 404
    assert (await send(anonymous, "/webhooks/wh_guess", "BUY ACME")).status_code == 404

    # Another trader neither sees nor makes tokens of Alice's account; anonymous callers are asked for a key.
    assert (await bob.get(f"/api/v1/accounts/{account}/webhooks")).status_code == 404
    assert (await bob.post(f"/api/v1/accounts/{account}/webhooks")).status_code == 404
    assert (await anonymous.post(f"/api/v1/accounts/{account}/webhooks")).status_code == 401


async def test_an_admin_reads_a_traders_tokens_but_does_not_make_them(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice)
    await webhook_path(alice, account)
    assert len((await market.get(f"/api/v1/accounts/{account}/webhooks")).json()) == 1
    assert (await market.post(f"/api/v1/accounts/{account}/webhooks")).status_code == 403


async def test_the_body_decides_json_or_text_whatever_the_content_type(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "100000")
    path = await webhook_path(alice, account)
    cases = [
        ('{"action": "buy", "ticker": "ACME", "contracts": 1}', "text/plain", "json"),
        ("BUY ACME qty 2", "application/json", "text"),
        ("ACME BUY NOW qty 4", "application/x-www-form-urlencoded", "text"),
    ]
    for body, content_type, expected in cases:
        received = await send(alice, path, body, content_type)
        assert received.status_code == 202, (body, received.text)
        signal = await settled(alice, received.json()["signal_id"])
        assert (signal["format"], signal["status"]) == (expected, "executed"), (body, signal)


async def test_invalid_signals_are_answered_422_and_kept_as_rejected_with_their_body(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    bodies = {
        "BUY {{ticker}}": "placeholder",
        "}} BUY ACME {{": "broken placeholder",
        '{"strategy":{"order":{"action":"buy"}},"ticker":"{{ticker"}': "broken placeholder",
        "BUY SELL ACME": "exactly one side",
        "BUY EURUSD": "no instrument 'EURUSD'",
        "BUY ACME @100 SL 105": "below the entry",
        "BUY ACME qty 0.5": "whole units",
        "CLOSE ACME": "nothing to close",
        "SELL ACME": None,  # valid: the broker refuses it later (nothing to sell, no short selling)
        "": "empty",
        # An unquoted placeholder that had no value: TradingView sends NaN, which is no price.
        '{"action": "buy", "ticker": "ACME", "price": NaN}': "not nan",
    }
    for body, reason in bodies.items():
        received = await send(alice, path, body)
        if reason is None:
            assert received.status_code == 202, received.text
            continue
        assert received.status_code == 422, (body, received.text)
        assert reason in received.json()["detail"], (body, received.json())
        stored = (await alice.get(f"/api/v1/signals/{received.json()['signal_id']}")).json()
        assert (stored["status"], stored["raw_body"]) == ("rejected", body)
    later = await settled(alice, (await alice.get("/api/v1/signals?limit=1&status=rejected")).json()[0]["id"])
    assert later["status"] == "rejected"
    assert (await books(alice, account))["cash"] == "10000.00000000"


async def test_garbage_never_gets_a_5xx(market: httpx.AsyncClient, alice: httpx.AsyncClient):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    bodies = [
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"action": "buy"}',
        b'{"action": "buy", "ticker": ["ACME"]}',
        b'{"action": "buy", "ticker": "ACME", "contracts": "1e999999"}',
        b'{"action": "buy", "ticker": "ACME", "contracts": 0.000000001}',
        b"BUY ACME qty 99999999999999999999999999999999",
        b"BUY " + b"A" * 40 + b" qty 1",
        b"{" * 5000,
        json.dumps({"action": "buy", "ticker": "ACME", "id": "x" * 500}).encode(),
    ]
    for body in bodies:
        received = await alice.post(path, content=body, headers={"content-type": "application/json"})
        assert received.status_code < 500, (body[:60], received.text)


async def test_a_broken_template_is_a_422_on_every_path_that_reads_signals(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    await open_account(alice)
    for body in ("}} BUY ACME {{", '{"strategy":{"order":{"action":"buy"}},"ticker":"{{ticker"}'):
        dry_run = await alice.post("/api/v1/signals/parse", content=body)
        assert (dry_run.status_code, "broken placeholder" in dry_run.text) == (422, True), dry_run.text
        sent = await alice.post("/api/v1/signals", content=body)
        assert sent.status_code == 422, sent.text
        stored = (await alice.get(f"/api/v1/signals/{sent.json()['signal_id']}")).json()
        assert stored["status"] == "rejected"
        tester = await anonymous.post("/dashboard/signals", data={"message": body})
        assert (tester.status_code, "broken placeholder" in tester.text) == (422, True)


async def test_take_profit_levels_are_bounded_and_what_is_acknowledged_executes(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice)
    path = await webhook_path(alice, account)
    too_many = await send(alice, path, "BUY ACME TP " + " ".join(f"{101 + n / 100:.2f}" for n in range(1400)))
    assert too_many.status_code == 422, too_many.text
    assert "1400 take-profit levels; at most 10" in too_many.json()["detail"]
    ten = await send(alice, path, "BUY ACME qty 10 TP " + " ".join(str(101 + n) for n in range(10)))
    assert ten.status_code == 202, ten.text
    assert (await settled(alice, ten.json()["signal_id"]))["status"] == "executed"


async def test_resends_within_the_window_and_repeated_ids_make_one_signal(
    market: httpx.AsyncClient, alice: httpx.AsyncClient
):
    account = await open_account(alice, "100000")
    path = await webhook_path(alice, account)
    first = await send(alice, path, "BUY ACME qty 2")
    resend = await send(alice, path, "BUY ACME qty 2")
    assert (first.status_code, resend.status_code) == (202, 200)
    assert resend.json()["signal_id"] == first.json()["signal_id"]
    assert resend.json()["status"] == "duplicate"
    copy = (await alice.get(f"/api/v1/signals/{resend.json()['duplicate_id']}")).json()
    assert (copy["status"], copy["duplicate_of"]) == ("duplicate", first.json()["signal_id"])

    with_id = {"action": "buy", "ticker": "ACME", "contracts": 1, "id": "alert-42"}
    one = await send(alice, path, json.dumps(with_id), "application/json")
    other_body = await send(alice, path, json.dumps({**with_id, "contracts": 5}), "application/json")
    assert (one.status_code, other_body.status_code) == (202, 200)
    assert other_body.json()["signal_id"] == one.json()["signal_id"]
    await settled(alice, one.json()["signal_id"])
    await settled(alice, first.json()["signal_id"])
    positions = (await books(alice, account))["positions"]
    assert [p["quantity"] for p in positions] == ["3.00000000"]  # 2 + 1: no copy traded
    stats = (await alice.get("/api/v1/analytics/trading")).json()
    assert (stats["signals"], stats["duplicates"]) == (4, 2)


async def test_the_api_routes_signals_to_an_own_account_or_the_first_one(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
):
    no_account = await alice.post("/api/v1/signals", content=b"BUY ACME")
    assert no_account.status_code == 404
    assert "open one" in no_account.json()["detail"]
    first = await open_account(alice, "10000")
    second = (await alice.post("/api/v1/accounts", json={"name": "second", "initial_deposit": "500"})).json()["id"]
    default = await alice.post("/api/v1/signals", content=b"BUY ACME")
    assert default.status_code == 202, default.text
    assert (await settled(alice, default.json()["signal_id"]))["account_id"] == first
    chosen = await alice.post(f"/api/v1/signals?account_id={second}", content=b"BUY ACME qty 2")
    assert (await settled(alice, chosen.json()["signal_id"]))["account_id"] == second
    me = (await alice.get("/api/v1/users/me")).json()["id"]
    assert (await alice.post(f"/api/v1/signals?user_id={me}", content=b"BUY ACME qty 3")).status_code == 202
    others = (await bob.get("/api/v1/users/me")).json()["id"]
    assert (await alice.post(f"/api/v1/signals?user_id={others}", content=b"BUY ACME")).status_code == 403
    assert (await bob.post(f"/api/v1/signals?account_id={first}", content=b"BUY ACME")).status_code == 404
    assert (await market.post(f"/api/v1/signals?account_id={first}", content=b"BUY ACME")).status_code == 403
    assert (await bob.get(f"/api/v1/signals/{default.json()['signal_id']}")).status_code == 404
    assert (await bob.get("/api/v1/signals")).json() == []
    assert len((await market.get("/api/v1/signals")).json()) == 3  # an admin reads everyone's
    assert (await alice.get("/api/v1/signals?status=nonsense")).status_code == 422
