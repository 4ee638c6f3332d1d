"""Child processes of the demo: Redis and Radicale, started on loopback, stopped by pid.

Children run in their own session, so a Ctrl-C in the terminal reaches only the demo,
which then stops them in reverse order (SIGTERM, then SIGKILL after a grace period). On
Linux each child also gets ``PR_SET_PDEATHSIG``, so it dies with the demo even if the demo
itself is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import signal
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
