"""``quantdesk serve``: uvicorn, with each worker process on a listening socket of its own.

uvicorn's workers share the one socket their parent binds, so they race for each new connection, and
the process that wakes first takes every connection waiting (asyncio accepts them in a loop). A client
that opens its keep-alive connections together, such as a load generator or a busy proxy, finds most of
them on one worker while the others idle: measured here, 14 of 16 connections on one of 2 workers.
On Linux each worker binds its own socket to the port with ``SO_REUSEPORT`` instead, and the kernel
spreads new connections over the sockets by their addresses (uvicorn's own proposal for this, its
pull request 2472, is not released).

uvicorn's supervisor still starts, watches and restarts the workers; what it hands each new worker is
``ReusePortSockets``, which the worker unpickles into a socket bound there and then.
"""

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

APP = "quantdesk.api.app:served_app"
log = logging.getLogger(__name__)


def spreads_connections() -> bool:
    """Whether the kernel balances connections over sockets sharing a port (Linux's ``SO_REUSEPORT``;
    elsewhere the option lets sockets share a port without spreading what arrives)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


class CannotListen(Exception):
    """The address cannot be bound: a program listens on it already, or it is not this machine's."""


def check_port_free(host: str, port: int) -> None:
    """Raise CannotListen if a program listens on the port already. Bound without SO_REUSEPORT, as
    uvicorn binds: a second server on a port in use fails, rather than joining the first one's sockets."""
    with _socket(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CannotListen(f"cannot listen on {host}:{port}: {exc}") from exc


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` with SO_REUSEPORT, not yet listening (uvicorn listens on it)."""
    sock = _socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def _bound_in_worker(host: str, port: int) -> list[socket.socket]:
    try:
        return [reuse_port_socket(host, port)]
    except OSError as exc:  # the supervisor stops on this exit code instead of restarting the worker
        print(f"error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)  # before logging is set up
        sys.exit(STARTUP_FAILURE)


class ReusePortSockets(list[socket.socket]):
    """The sockets uvicorn's supervisor passes to each worker it starts, empty in the supervisor:
    unpickled in the worker, they become a list holding a socket the worker has just bound."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, ...]:
        return _bound_in_worker, (self.host, self.port)


def serve(host: str, port: int, workers: int, reload: bool, log_level: str) -> None:
    options: dict[str, Any] = {
        "app": APP,
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "reload": reload,
        "log_level": log_level,
        "log_config": None,  # quantdesk's own logging (text or JSON, with request ids) formats uvicorn's lines
        "access_log": False,  # quantdesk.access writes one line per request, with its id and no secrets
        "proxy_headers": False,  # quantdesk reads X-Forwarded-For itself, and only from QUANTDESK_TRUSTED_PROXIES
        "ws": "websockets-sansio",  # uvicorn deprecates its older websockets implementation
    }
    if workers < 2 or reload or not spreads_connections():
        uvicorn.run(**options)
        return
    check_port_free(host, port)  # one error now, not one in each worker
    log.info("serving on http://%s:%d: %d workers, each on a socket of its own (SO_REUSEPORT)", host, port, workers)
    Multiprocess(uvicorn.Config(**options), sockets=ReusePortSockets(host, port)).run()
