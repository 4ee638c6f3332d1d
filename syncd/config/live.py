"""The configuration of a long-running process, reloaded while it runs.

``syncd web``, ``worker`` and ``run`` hold their configuration in a :class:`LiveConfig`.
:meth:`LiveConfig.reload` (on SIGHUP, or when :meth:`LiveConfig.changed` sees a file's
modification time or size change) reads the directory again. A valid result replaces
the tenants at once (queued work stays in Redis and is served with the new tenants; a
run in progress finishes with the configuration it started with). An invalid one is
rejected with its reasons in the log, and the old configuration keeps running.
``syncd.yaml`` (Redis URL, listen address, log settings, timeouts) is read at start
only: a changed one is logged as needing a restart and otherwise ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import structlog

from syncd.config._load import Config, load_config
from syncd.errors import ConfigError

log = structlog.get_logger(__name__)

Stamp = tuple[tuple[str, int, int], ...]
Listener = Callable[[Config], None]


def stamp(config_dir: Path) -> Stamp:
    """Name, modification time and size of ``syncd.yaml`` and every tenant file."""
    paths = [config_dir / "syncd.yaml", *sorted((config_dir / "tenants").glob("*.y*ml"))]
    found = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(found)


class LiveConfig:
    """The current :class:`Config`, and how to read it again from ``config_dir``."""

    def __init__(
        self,
        config: Config,
        config_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.current = config
        self._dir = config_dir
        self._environ = dict(environ if environ is not None else os.environ)
        self._stamp = stamp(config_dir) if config_dir is not None else ()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(new)`` after every accepted reload; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def changed(self) -> bool:
        """Whether a config file changed since the last load (or reload attempt)."""
        return self._dir is not None and stamp(self._dir) != self._stamp

    def reload(self, why: str) -> bool:
        """Read the directory again; True if the new tenants were taken.

        An invalid directory is logged (``config_reload_rejected``, with every problem)
        and the current configuration stays.
        """
        if self._dir is None:
            return False
        self._stamp = stamp(self._dir)  # the same broken files are not retried every tick
        try:
            new = load_config(self._dir, self._environ)
        except ConfigError as exc:
            problems = list(exc.problems) or [str(exc)]
            log.error("config_reload_rejected", why=why, problems=problems, kept="old config")
            return False
        if new.settings != self.current.settings:
            log.warning(
                "config_reload_settings_ignored",
                reason="syncd.yaml changed: restart the process to apply it",
            )
        self.current = replace(new, settings=self.current.settings)
        log.info(
            "config_reloaded",
            why=why,
            tenants=len(new.tenants),
            bindings=sum(len(t.bindings) for t in new.tenants.values()),
        )
        for listener in list(self._listeners):
            listener(self.current)
        return True
