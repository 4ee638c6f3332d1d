"""Which modules the light commands import (start-up time; the seconds are in bench/startup.py).

Each command runs in a fresh interpreter under ``python -X importtime``, which lists every
module imported, so these tests are deterministic where timing them would not be.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncd_lab.stack.ports import free_port

SHIPPED = Path(__file__).resolve().parents[2] / "config"
SHIPPED_ENV = {
    "ACME_APP_SECRET": "s3cret-for-tests",
    "ACME_CALLBACK_TOKEN": "tok-for-tests",
    "ACME_CALLBACK_AES_KEY": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "ALICE_DAV_PASSWORD": "alice-dav-pw",
}
HEAVY = ("aiohttp", "arq", "caldav", "icalendar", "niquests", "pydantic", "redis", "yaml")
RUN_CLI = "import sys; from syncd.cli import main; main(prog_name='syncd')"


def imported(*argv: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Exit status of ``syncd ARGV`` and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN_CLI, *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "click" in names, done.stderr[-500:]  # the listing worked
    return done.returncode, names


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["status", "--help"]])
def test_version_and_help_import_no_library(argv: list[str]) -> None:
    """`syncd --version`, `--help` and `status --help` load click and syncd's CLI only
    (`--help` also the small CLI modules of plugin commands, such as the lab's `sandbox`,
    which may set up logging, but none of the libraries above)."""
    code, names = imported(*argv)
    assert code == 0
    assert not names & set(HEAVY), sorted(names & set(HEAVY))
    if argv != ["--help"]:
        assert not names & {"prometheus_client", "cryptography"}


def test_check_loads_config_libraries_only() -> None:
    """`syncd check` needs pydantic and YAML, not the network stacks or iCalendar."""
    code, names = imported("check", "--config", str(SHIPPED), env=SHIPPED_ENV)
    assert code == 0
    assert {"pydantic", "yaml"} <= names
    assert not names & {"aiohttp", "arq", "caldav", "icalendar", "niquests", "redis"}


def test_status_loads_redis_but_not_the_sides() -> None:
    """`syncd status` talks to Redis only: no aiohttp, caldav or icalendar (here Redis is a
    closed port, so it ends with exit 1 after trying)."""
    env = {**SHIPPED_ENV, "SYNCD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, names = imported("status", "--config", str(SHIPPED), env=env)
    assert code == 1
    assert "redis" in names
    assert not names & {"aiohttp", "caldav", "icalendar", "niquests"}
