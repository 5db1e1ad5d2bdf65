"""The webhook's gate (addresses, rate) and the log filter that keeps URL secrets out of logs."""

import logging

import pytest
from starlette.requests import Request

from quantdesk.core.errors import Forbidden, TooManyRequests
from quantdesk.core.logging import RedactSecrets, redact
from quantdesk.signals.gate import TokenBuckets, check_address, client_address


def request_from(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "client": (peer, 1234)})


def test_a_forwarded_address_counts_only_from_a_trusted_proxy():
    assert client_address(request_from("203.0.113.5", "52.89.214.238"), []) == "203.0.113.5"
    assert client_address(request_from("203.0.113.5", "52.89.214.238"), ["10.0.0.0/8"]) == "203.0.113.5"
    assert client_address(request_from("10.0.0.2", "1.1.1.1, 52.89.214.238"), ["10.0.0.0/8"]) == "52.89.214.238"
    # Two proxies in a row: the right-most address that is not one of them is the client.
    chain = "52.32.178.7, 10.0.0.9"
    assert client_address(request_from("10.0.0.2", chain), ["10.0.0.0/8"]) == "52.32.178.7"
    assert client_address(request_from("10.0.0.2"), ["10.0.0.0/8"]) == "10.0.0.2"


def test_the_allow_list_takes_addresses_and_networks():
    allowed = ["52.89.214.238", "192.0.2.0/24"]
    check_address(request_from("52.89.214.238"), allowed, [])
    check_address(request_from("192.0.2.77"), allowed, [])
    check_address(request_from("198.51.100.1"), [], [])  # no list: everyone
    with pytest.raises(Forbidden, match=r"198\.51\.100\.1"):
        check_address(request_from("198.51.100.1"), allowed, [])
    with pytest.raises(Forbidden):
        check_address(request_from("not-an-address"), allowed, [])


def test_a_token_bucket_allows_its_burst_then_its_rate(monkeypatch: pytest.MonkeyPatch):
    now = [1000.0]
    monkeypatch.setattr("quantdesk.signals.gate.time.monotonic", lambda: now[0])
    buckets = TokenBuckets(rate=2.0, burst=3)
    for _ in range(3):
        buckets.take(1)
    with pytest.raises(TooManyRequests) as limited:
        buckets.take(1)
    assert limited.value.retry_after_s == pytest.approx(0.5)
    buckets.take(2)  # another token has its own bucket
    now[0] += 0.5
    buckets.take(1)  # one refilled
    with pytest.raises(TooManyRequests):
        buckets.take(1)
    TokenBuckets(rate=0, burst=1).take(1)  # 0: no limit
    for _ in range(100):
        TokenBuckets(rate=0, burst=1).take(1)


def test_webhook_tokens_and_socket_keys_never_reach_a_log(caplog: pytest.LogCaptureFixture):
    assert redact("POST /webhooks/wh_abc-123_XYZ HTTP/1.1") == "POST /webhooks/<redacted> HTTP/1.1"
    assert redact("GET /ws?token=qd_secret&x=1") == "GET /ws?token=<redacted>&x=1"
    assert redact("GET /api/v1/orders?status=open") == "GET /api/v1/orders?status=open"
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactSecrets())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/webhooks/wh_topsecret", "1.1", 202)
        logger.info("failed on /webhooks/wh_othersecret")
    assert "topsecret" not in caplog.text
    assert "othersecret" not in caplog.text
    assert caplog.text.count("/webhooks/<redacted>") == 2
