"""The one error tree of quantdesk. Domain code raises these; the API maps them to HTTP once.

    QuantdeskError
    ├── Unauthorized             401  no API key, or one that is unknown or revoked
    ├── Forbidden                403  the key is valid but may not do this (role, owner, disabled user)
    ├── NotFound                 404  a named thing does not exist
    ├── Conflict                 409  it exists already / clashes with stored state
    ├── ValidationFailed         422  input is well-formed but wrong; ``errors`` lists each problem
    │   └── InsufficientFunds    422  not enough cash (buy, withdraw) or quantity (sell)
    ├── PayloadTooLarge          413  body over the configured limit
    ├── TooManyRequests          429  a rate limit; ``retry_after_s`` says when to try again
    ├── UnsupportedMediaType     415  body is not the kind of content expected
    └── ProviderError            424  an upstream data provider failed (``retryable`` says if waiting helps)
        ├── ProviderRateLimited  429  the provider throttled us; ``retry_after_s`` when known
        ├── ProviderNotFound     404  the provider does not know the symbol / coin
        └── ProviderRejected     422  the provider refused the request as asked (premium, range, key)

Every error carries a ``detail`` sentence that tells the caller what to fix.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class QuantdeskError(Exception):
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    code: ClassVar[str] = "error"

    def __str__(self) -> str:
        return self.detail


class Unauthorized(QuantdeskError):
    code = "unauthorized"


class Forbidden(QuantdeskError):
    code = "forbidden"


class NotFound(QuantdeskError):
    code = "not_found"


class Conflict(QuantdeskError):
    code = "conflict"


class ValidationFailed(QuantdeskError):
    code = "validation_failed"


# PostgreSQL cannot store NUL in text, and SQLite is made to refuse it the same way (core.db).
NUL_IN_TEXT = "some text in the request holds a NUL character (code 0); remove it"


class InsufficientFunds(ValidationFailed):
    code = "insufficient_funds"


class PayloadTooLarge(QuantdeskError):
    code = "payload_too_large"


@dataclass
class TooManyRequests(QuantdeskError):
    retry_after_s: float = 1.0
    code: ClassVar[str] = "rate_limited"


class UnsupportedMediaType(QuantdeskError):
    code = "unsupported_media_type"


@dataclass
class ProviderError(QuantdeskError):
    provider: str = ""
    retryable: bool = True
    retry_after_s: float | None = None
    code: ClassVar[str] = "provider_unavailable"


@dataclass
class ProviderRateLimited(ProviderError):
    code: ClassVar[str] = "provider_rate_limited"


@dataclass
class ProviderNotFound(ProviderError):
    retryable: bool = False
    code: ClassVar[str] = "provider_not_found"


@dataclass
class ProviderRejected(ProviderError):
    retryable: bool = False
    code: ClassVar[str] = "provider_rejected"
