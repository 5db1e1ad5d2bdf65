"""POST /webhooks/{token} is served in front of FastAPI's routing (signals.direct): the same answers, the
same errors, the same request middleware, and FastAPI still owns the rest of that path."""

import logging

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Message

from quantdesk.signals.direct import DECLARED
from tests.integration.signal_helpers import send, signal_of, webhook_path
from tests.integration.trading_helpers import open_account


async def test_the_webhook_is_answered_without_fastapis_routes(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, anonymous: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    path = await webhook_path(alice, await open_account(alice))

    async def no_route(*_args: object) -> None:
        raise AssertionError("a FastAPI route was asked to answer the webhook")

    with monkeypatch.context() as patched:
        patched.setattr(APIRoute, "handle", no_route)
        answer = await send(anonymous, path, "BUY ACME")
    assert answer.status_code == 202, answer.text
    assert answer.headers["x-request-id"]  # the request middleware wraps it
    assert (await signal_of(alice, answer.json()["signal_id"]))["raw_body"] == "BUY ACME"


async def test_other_methods_on_a_webhook_url_are_fastapis_405(anonymous: httpx.AsyncClient):
    answer = await anonymous.get("/webhooks/wh_anything")
    assert answer.status_code == 405
    assert answer.json()["error"] == "method_not_allowed"
    assert (await anonymous.post("/webhooks/wh_a/b", content=b"BUY ACME")).status_code == 404


async def test_refusals_come_from_the_error_table(anonymous: httpx.AsyncClient, app: FastAPI):
    unknown = await send(anonymous, "/webhooks/wh_guess", "BUY ACME")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    assert "unknown or was revoked" in unknown.json()["detail"]
    limit = int(app.state.settings.webhook_max_body_kb * 1024)
    too_large = await send(anonymous, "/webhooks/wh_guess", "x" * (limit + 1))
    assert too_large.status_code == 413
    assert "QUANTDESK_WEBHOOK_MAX_BODY_KB" in too_large.json()["detail"]


async def test_an_unexpected_error_is_a_logged_500_without_internals(
    anonymous: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def broken(_delivery: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.signal_desk, "submit", broken)
    answer = await send(anonymous, "/webhooks/wh_anything", "BUY ACME")
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert "secret internals" not in answer.text
    assert "secret internals" in caplog.text


async def test_a_sender_hanging_up_before_its_body_is_in_is_not_answered(
    app: FastAPI, caplog: pytest.LogCaptureFixture
):
    sent: list[Message] = []

    async def hung_up() -> Message:
        return {"type": "http.disconnect"}

    async def send_message(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/webhooks/wh_anything", "raw_path": b"/webhooks/wh_anything", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1), "server": ("t", 80),
    }  # fmt: skip
    with caplog.at_level(logging.ERROR):
        await app(scope, hung_up, send_message)
    assert sent == []
    assert "unhandled error" not in caplog.text


def test_fastapi_still_declares_the_webhook_for_the_docs(app: FastAPI):
    assert DECLARED.path == "/webhooks/{token}"
    operation = app.openapi()["paths"]["/webhooks/{token}"]["post"]
    assert set(operation["requestBody"]["content"]) == {"text/plain", "application/json"}
    assert {"202", "200", "422"} <= set(operation["responses"])
