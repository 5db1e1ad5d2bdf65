"""What a webhook checks before it reads a signal: the caller's address, the body's size, the token's rate."""

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from starlette.requests import Request

from quantdesk.core.errors import Forbidden, PayloadTooLarge, TooManyRequests

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _within(address: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The caller's address. X-Forwarded-For counts only when the connection comes from a trusted
    proxy (anyone else could write any address in it); then the client is the last address in it that
    is not itself a trusted proxy."""
    peer = request.client.host if request.client is not None else ""
    trusted = networks(tuple(trusted_proxies))
    if not trusted or not _within(peer, trusted):
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if not _within(hop, trusted):
            return hop
    return peer


def check_address(request: Request, allowed: Sequence[str], trusted_proxies: Sequence[str]) -> None:
    if not allowed:
        return
    address = client_address(request, trusted_proxies)
    if not _within(address, networks(tuple(allowed))):
        raise Forbidden(f"{address or 'this address'} may not call webhooks here (QUANTDESK_WEBHOOK_ALLOWED_IPS)")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it grows past ``max_bytes`` (nothing larger is ever held)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"a signal may be at most {max_bytes} bytes (QUANTDESK_WEBHOOK_MAX_BODY_KB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"a signal may be at most {max_bytes} bytes (QUANTDESK_WEBHOOK_MAX_BODY_KB)")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class TokenBuckets:
    """Per-token rate limit: ``burst`` signals at once, refilled at ``rate`` per second. Kept in the
    process: with N server processes a token may send up to N times the rate."""

    rate: float
    burst: int
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)  # tokens left, when

    def take(self, key: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1:
            wait = (1 - tokens) / self.rate
            raise TooManyRequests(
                f"this webhook sends too fast: at most {self.rate:g} signals per second", retry_after_s=wait
            )
        self._buckets[key] = (tokens - 1, now)
