"""vdirsyncer 0.21, the baseline, in its own virtualenv (never in the project's).

``ensure_vdirsyncer()`` creates ``bench/.venv-vdirsyncer`` on first use and installs
``vdirsyncer==0.21.0`` from PyPI into it (``BENCH_VDIRSYNCER`` may point at an existing
``vdirsyncer`` executable instead). ``VdirPair`` writes a config that pairs two CalDAV
collections directly (``collections = null``: no discovery) and times ``vdirsyncer sync``
as the systemd timer runs it: a fresh process each time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

REQUIREMENT = "vdirsyncer==0.21.0"
VENV = Path(__file__).resolve().parent / ".venv-vdirsyncer"


def ensure_vdirsyncer() -> Path:
    """Path of a vdirsyncer 0.21 executable, installing it into its own venv if needed."""
    given = os.environ.get("BENCH_VDIRSYNCER")
    if given:
        return Path(given)
    exe = VENV / "bin" / "vdirsyncer"
    if exe.exists():
        return exe
    log.warning("installing_vdirsyncer", venv=str(VENV), requirement=REQUIREMENT)
    base = getattr(sys, "_base_executable", sys.executable)
    for cmd in (
        [base, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", REQUIREMENT],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return exe


def version(exe: Path) -> str:
    """``vdirsyncer --version`` output, e.g. ``vdirsyncer, version 0.21.0``."""
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _storage(name: str, url: str) -> str:
    return (
        f'[storage {name}]\ntype = "caldav"\nurl = "{url}"\n'
        'username = "syncd"\npassword = "unused"\n\n'
    )


@dataclass
class VdirPair:
    """Two CalDAV collections paired by vdirsyncer, with its status under ``workdir``."""

    exe: Path
    workdir: Path
    url_a: str
    url_b: str

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'[general]\nstatus_path = "{self.workdir / "status"}/"\n\n'
            '[pair bench]\na = "bench_a"\nb = "bench_b"\ncollections = null\n'
            'conflict_resolution = "a wins"\n\n'
            + _storage("bench_a", self.url_a)
            + _storage("bench_b", self.url_b)
        )

    @property
    def config(self) -> Path:
        """The config file this pair runs with."""
        return self.workdir / "config"

    def run(self, *args: str) -> float:
        """Run ``vdirsyncer -c CONFIG ARGS`` to completion; wall seconds. Raises on failure."""
        started = time.perf_counter()
        done = subprocess.run(
            [str(self.exe), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"vdirsyncer {' '.join(args)} failed: {done.stderr[-2000:]}")
        return elapsed

    def startup_seconds(self) -> float:
        """Wall time of ``vdirsyncer --version``: interpreter and import cost of one run."""
        started = time.perf_counter()
        subprocess.run([str(self.exe), "--version"], capture_output=True, check=True)
        return time.perf_counter() - started
