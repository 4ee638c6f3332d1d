"""``syncd demo --once`` as a person runs it: a real process starting real servers.

The demo runs as a subprocess (the installed ``syncd`` script next to this Python) with
``--workdir`` inside tmp_path, so afterwards the test can look at what it left behind:
Radicale's storage, the generated config, and the process table (every child's command
line names the work dir, so a leftover child is easy to find).
"""

from __future__ import annotations

import os
import re
import socket
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


def _free_block(size: int = 4) -> int:
    """A port N such that N .. N + size - 1 are all free on loopback right now."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + size < 65536 and not any(port_open(base + i) for i in range(size)):
            return base
    raise AssertionError("no block of free ports")


@pytest.mark.slow
def test_demo_fixed_ports_and_kept_data_for_real_clients(tmp_path: Path) -> None:
    """--port-base N puts Redis, Radicale, the sandbox and syncd on N..N+3, the output tells
    Thunderbird and DAVx5 users what to enter, and a second run with the same --keep DIR
    starts on the same ports and still has the first run's calendar data."""
    base, workdir = _free_block(), tmp_path / "kept"
    first = _run("demo", "--once", "--port-base", str(base), "--keep", str(workdir))
    assert first.returncode == 0, first.stderr + first.stdout
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", first.stdout)}
    assert ports == {base, base + 1, base + 2, base + 3}, first.stdout
    calendar = f"http://127.0.0.1:{base + 1}/alice/work/"
    assert f"Username alice, Location {calendar}" in first.stdout
    assert f"Base URL http://127.0.0.1:{base + 1}/, user alice" in first.stdout
    assert "Thunderbird" in first.stdout
    assert "DAVx5" in first.stdout
    storage = workdir / "radicale" / "collection-root" / "alice" / "work"
    kept = {p.name for p in storage.glob("*.ics")}
    assert len(kept) == 1

    second = _run("demo", "--once", "--port-base", str(base), "--keep", str(workdir))
    assert second.returncode == 0, second.stderr + second.stdout
    assert {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", second.stdout)} == ports
    assert kept <= {p.name for p in storage.glob("*.ics")}  # the first run's event survived
    assert [p for p in ports if port_open(p)] == []


def test_demo_port_base_in_use_is_one_line(tmp_path: Path) -> None:
    """A --port-base whose ports are taken fails at once, in one line naming the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        done = _run("demo", "--once", "--port-base", str(port), "--keep", str(tmp_path / "d"))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"syncd: DemoFailed: port {port} is in use (--port-base {port} uses {port}-{port + 3})"
    )
