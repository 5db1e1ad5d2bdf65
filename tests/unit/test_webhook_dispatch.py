"""Which requests signals.direct serves itself: POST /webhooks/{token}, a token being one path segment."""

import pytest

from quantdesk.signals.direct import webhook_token


def scope(path: str, method: str = "POST", root_path: str = "", kind: str = "http") -> dict[str, object]:
    return {"type": kind, "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/webhooks/wh_abc123", "wh_abc123"),
        ("/webhooks/a token with spaces", "a token with spaces"),  # the path as decoded by the server
        ("/webhooks/", None),
        ("/webhooks", None),
        ("/webhooks/wh_abc/extra", None),
        ("/webhooks/wh_abc/", None),
        ("/webhooksx/wh_abc", None),
        ("/api/v1/webhooks/wh_abc", None),
    ],
)
def test_a_token_is_one_whole_path_segment_after_the_prefix(path: str, expected: str | None) -> None:
    assert webhook_token(scope(path)) == expected


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_are_left_to_fastapi(method: str) -> None:
    assert webhook_token(scope("/webhooks/wh_abc", method)) is None


def test_a_websocket_on_that_path_is_left_to_fastapi() -> None:
    assert webhook_token({"type": "websocket", "path": "/webhooks/wh_abc"}) is None


def test_the_path_is_read_under_the_root_path_behind_a_proxy() -> None:
    assert webhook_token(scope("/quantdesk/webhooks/wh_abc", root_path="/quantdesk")) == "wh_abc"
    assert webhook_token(scope("/webhooks/wh_abc", root_path="/quantdesk")) == "wh_abc"  # already stripped
    assert webhook_token(scope("/quantdeskx/webhooks/wh_abc", root_path="/quantdesk")) is None
