"""Logging set-up. URLs carry secrets (Alpha Vantage keys, webhook tokens): they never reach a log."""

import logging
import re

# httpx logs every request URL at INFO, and Alpha Vantage takes its key in the query string.
QUIET_LOGGERS = ("httpx", "httpcore")
# A webhook's token is its path; the socket's API key may be its query string.
SECRET_IN_PATH = re.compile(r"(/webhooks/)[^/\s?\"]+|([?&]token=)[^&\s\"]+")


def redact(text: str) -> str:
    return SECRET_IN_PATH.sub(lambda m: (m.group(1) or m.group(2)) + "<redacted>", text)


class RedactSecrets(logging.Filter):
    """Rewrites access-log lines (uvicorn passes the path as an argument) without the secrets in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn.access", "uvicorn.error", "quantdesk.api"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
