"""Logging set-up. Third-party loggers that print request URLs are kept quiet: URLs carry API keys."""

import logging

# httpx logs every request URL at INFO, and Alpha Vantage takes its key in the query string.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
