"""Loopback ports: a free one, whether one answers, and ``HOST:PORT`` text."""

from __future__ import annotations

import socket

from syncd.config import parse_listen

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as ``(host, port)``, parsed as syncd's own
    ``listen`` setting is; :class:`syncd.errors.ConfigError` with a one-line reason if not."""
    return parse_listen(text)
