"""``syncd demo --once`` as a person runs it: a real process starting real servers.

The demo runs as a subprocess (the installed ``syncd`` script next to this Python) with
``--workdir`` inside tmp_path, so afterwards the test can look at what it left behind:
Radicale's storage, the generated config, and the process table (every child's command
line names the work dir, so a leftover child is easy to find).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from syncd_lab.stack.ports import port_open

SYNCD = str(Path(sys.executable).with_name("syncd"))
TIMEOUT_S = 120


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [SYNCD, *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False
    )


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.slow
def test_demo_once_shows_changes_flowing_both_ways(tmp_path: Path) -> None:
    """--once exits 0 after both directions flowed, and leaves no process or port behind."""
    workdir = tmp_path / "demo"
    done = _run("demo", "--once", "--workdir", str(workdir))
    out = done.stdout
    assert done.returncode == 0, done.stderr + out

    to_caldav = re.search(r"DingTalk -> CalDAV latency: (\d+) ms", out)
    to_dingtalk = re.search(r"CalDAV -> DingTalk latency: (\d+) ms", out)
    assert to_caldav, out
    assert to_dingtalk, out
    assert int(to_caldav.group(1)) < 30_000
    assert int(to_dingtalk.group(1)) < 30_000
    assert re.search(r"Requests per idle reconcile: \d", out), out
    assert re.search(r"\d+ poll reconcile\(s\), 0 write\(s\)", out), out
    assert "Traceback" not in done.stderr

    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)}
    assert len(ports) == 4, out  # Redis, Radicale, the sandbox, syncd
    assert [p for p in ports if port_open(p)] == []
    assert _processes_mentioning(str(workdir)) == []

    # The edit made through CalDAV is what Radicale stores, and the config syncd ran from
    # is a valid one.
    [stored] = (workdir / "radicale" / "collection-root" / "alice" / "work").glob("*.ics")
    assert "SUMMARY:Design review (moved to 11:00)" in stored.read_text()
    checked = _run("check", "--config", str(workdir / "config"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_demo_fails_in_one_line_and_stops_what_it_started(tmp_path: Path) -> None:
    """A child that cannot start gives exit 1, one stderr line, and Redis is stopped again."""
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "radicale").write_text("a file where Radicale wants its storage directory")
    done = _run("demo", "--once", "--workdir", str(workdir))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("syncd: DemoFailed: Radicale"), done.stderr
    assert str(workdir / "radicale.log") in lines[0]
    assert _processes_mentioning(str(workdir)) == []
