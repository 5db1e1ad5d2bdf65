"""Users, API keys, roles and paper accounts with their cash ledger, on both databases."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.models import ApiKey
from tests.conftest import bearer
from tests.integration.trading_helpers import books, open_account


async def test_an_admin_creates_users_whose_keys_are_stored_only_as_hashes(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, session: AsyncSession
):
    created = await client.post("/api/v1/users", json={"username": "Carol", "display_name": "Carol C"})
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    assert created.json()["role"] == "trader"
    stored = list(await session.scalars(select(ApiKey)))
    assert all(key not in (row.prefix + row.digest) for row in stored)
    me = await anonymous.get("/api/v1/users/me", headers=bearer(key))
    assert me.json()["username"] == "Carol"
    again = await client.post("/api/v1/users", json={"username": "carol"})
    assert again.status_code == 409
    assert "taken" in again.json()["detail"]
    bad = await client.post("/api/v1/users", json={"username": "no spaces"})
    assert bad.status_code == 422


async def test_sign_up_is_for_admins_unless_open(anonymous: httpx.AsyncClient, app):
    refused = await anonymous.post("/api/v1/users", json={"username": "mallory"})
    assert refused.status_code == 401
    app.state.settings.open_signup = True
    opened = await anonymous.post("/api/v1/users", json={"username": "mallory"})
    assert opened.status_code == 201
    admin = await anonymous.post("/api/v1/users", json={"username": "eve", "role": "admin"})
    assert admin.status_code == 403


async def test_keys_are_revocable_and_a_disabled_user_is_locked_out(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient
):
    second = (await alice.post("/api/v1/keys", json={"label": "laptop"})).json()
    assert (await anonymous.get("/api/v1/users/me", headers=bearer(second["api_key"]))).status_code == 200
    keys = (await alice.get("/api/v1/keys")).json()
    assert [k["label"] for k in keys] == ["first key", "laptop"]
    assert keys[0]["last_used_at"] is not None
    assert (await alice.delete(f"/api/v1/keys/{second['id']}")).status_code == 204
    revoked = await anonymous.get("/api/v1/users/me", headers=bearer(second["api_key"]))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    assert revoked.headers["www-authenticate"] == "Bearer"
    me = (await alice.get("/api/v1/users/me")).json()
    assert (await client.patch(f"/api/v1/users/{me['id']}", json={"disabled": True})).status_code == 200
    locked = await alice.get("/api/v1/users/me")
    assert locked.status_code == 403
    assert "disabled" in locked.json()["detail"]
    assert (await anonymous.get("/api/v1/users/me", headers=bearer("qd_not-a-key"))).status_code == 401
    assert (await anonymous.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})).status_code == 401


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("other", 404), ("admin", 200), ("anonymous", 401)])
@pytest.mark.parametrize("path", ["", "/ledger"])
async def test_who_may_read_an_account(
    client: httpx.AsyncClient, alice, bob, anonymous: httpx.AsyncClient, who: str, status: int, path: str
):
    account = await open_account(alice)
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    assert (await caller.get(f"/api/v1/accounts/{account}{path}")).status_code == status


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("other", 404), ("admin", 403), ("anonymous", 401)])
async def test_only_the_owner_moves_cash(client: httpx.AsyncClient, alice, bob, anonymous, who: str, status: int):
    account = await open_account(alice)
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    response = await caller.post(f"/api/v1/accounts/{account}/deposit", json={"amount": "5"})
    assert response.status_code == status, response.text
    assert (await alice.get(f"/api/v1/accounts/{account}")).json()["cash"] == (
        "10005.00000000" if status == 200 else "10000.00000000"
    )


async def test_listing_shows_a_trader_only_their_own(client: httpx.AsyncClient, alice, bob):
    mine, theirs = await open_account(alice), await open_account(bob)
    assert [a["id"] for a in (await alice.get("/api/v1/accounts")).json()] == [mine]
    assert {a["id"] for a in (await client.get("/api/v1/accounts")).json()} == {mine, theirs}
    assert (await alice.get("/api/v1/users")).status_code == 403


async def test_deposits_and_withdrawals_are_ledger_rows(alice):
    account = await open_account(alice, "1000.50")
    assert (await alice.post(f"/api/v1/accounts/{account}/deposit", json={"amount": 99.5})).status_code == 200
    assert (await books(alice, account))["cash"] == "1100.00000000"
    out = await alice.post(f"/api/v1/accounts/{account}/withdraw", json={"amount": "100.25"})
    assert out.json()["cash"] == "999.75000000"
    ledger = (await alice.get(f"/api/v1/accounts/{account}/ledger")).json()
    assert [(row["kind"], row["amount"]) for row in reversed(ledger)] == [
        ("deposit", "1000.50000000"),
        ("deposit", "99.50000000"),
        ("withdrawal", "-100.25000000"),
    ]
    await books(alice, account)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("withdraw", {"amount": "5000"}, "holds 1000"),
        ("deposit", {"amount": "0"}, "greater than 0"),
        ("deposit", {"amount": "-5"}, "greater than 0"),
        ("deposit", {"amount": "NaN"}, "amount"),
        ("deposit", {"amount": "1.123456789"}, "8 decimal places"),
        ("deposit", {"amount": "abc"}, "amount"),
        ("deposit", {}, "amount"),
    ],
)
async def test_bad_cash_requests_change_nothing(alice, path: str, body: dict[str, object], message: str):
    account = await open_account(alice, "1000")
    before = await books(alice, account)
    response = await alice.post(f"/api/v1/accounts/{account}/{path}", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert await books(alice, account) == before


async def test_malformed_json_is_a_clear_422(alice):
    account = await open_account(alice)
    response = await alice.post(
        f"/api/v1/accounts/{account}/deposit", content=b"{amount: 5", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.text


@pytest.mark.parametrize(
    ("who", "listed", "revoked"), [("owner", 1, 204), ("other", 0, 404), ("admin", 1, 204), ("anonymous", None, 401)]
)
async def test_who_may_list_and_revoke_a_key(client, alice, bob, anonymous, who, listed, revoked):
    me = (await alice.get("/api/v1/users/me")).json()
    extra = (await alice.post("/api/v1/keys", json={"label": "spare"})).json()
    caller = {"owner": alice, "other": bob, "admin": client, "anonymous": anonymous}[who]
    keys = await caller.get(f"/api/v1/keys?user_id={me['id']}")
    if listed is None:
        assert keys.status_code == 401
    else:
        assert sum(k["id"] == extra["id"] for k in keys.json()) == listed
    assert (await caller.delete(f"/api/v1/keys/{extra['id']}")).status_code == revoked
