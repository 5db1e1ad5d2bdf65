"""API keys: random, shown once, stored as a SHA-256 digest, compared in constant time.

A key is 256 random bits, so a fast hash is enough (no password to guess); the first characters are
kept in clear as the lookup prefix.
"""

import hashlib
import hmac
import secrets

KEY_PREFIX = "qd_"
LOOKUP_CHARS = 12  # "qd_" and 9 random characters


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def lookup(key: str) -> str:
    return key[:LOOKUP_CHARS]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(key), stored_digest)
