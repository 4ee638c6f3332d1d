"""The operator commands (sync, status, conflicts, replay) as an operator runs them.

Each command runs as a subprocess of the installed ``syncd`` script, with a config
directory pointing at the ``spine`` fixture's sandbox, Redis and CalDAV calendar; the
test's event loop keeps those serving meanwhile. stdout is the command's output and
must hold nothing else (logs and progress go to stderr).
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import time
from pathlib import Path

import pytest

from syncd import queue
from syncd.model import Side
from syncd.store import keys
from syncd.store.redis import RedisStore
from syncd.sync.records import DeadLetter, RunStatus
from syncd_lab.stack.ports import free_port
from tests.fixtures.processes import SUMMARY, SYNCD, command_env, run_syncd
from tests.fixtures.spine import RADICALE_ONLY, REF, Spine, summaries, timed_event, write_config


@pytest.fixture
def config_dir(spine: Spine, tmp_path: Path, redis_url: str) -> Path:
    """A config dir for the spine's servers (binding conflict policy: newest)."""
    cal = spine.calendar
    return write_config(tmp_path / "cli", spine.sandbox, cal.url, redis_url, auth=cal.auth)


# --- sync -------------------------------------------------------------------------------------


async def test_sync_creates_then_reports_nothing_to_do(spine: Spine, config_dir: Path) -> None:
    """sync after a DingTalk create: created=1 and the event on CalDAV; again: all zero."""
    await spine.api.create("u-alice", timed_event("Design review", day=22))
    first = await run_syncd(config_dir, "sync", "acme", "alice-work")
    assert first.code == 0, first
    assert first.counts() == (1, 0, 0, 0)
    assert first.lines == [first.lines[-1]]  # nothing but the summary on stdout
    assert summaries((await spine.caldav_items()).items) == ["Design review"]

    before = spine.writes()
    again = await run_syncd(config_dir, "sync", "acme", "alice-work")
    assert again.code == 0, again
    assert again.counts() == (0, 0, 0, 0)
    assert spine.writes() == before
    # That run read back our own write, which on most servers names every item of the
    # calendar: the CalDAV side then reports a complete listing. An idle run is all cursor.
    idle = await run_syncd(config_dir, "sync", "acme", "alice-work")
    assert idle.counts() == (0, 0, 0, 0)
    assert (await RedisStore(spine.pool).get_status(REF)).full is False  # cursors used

    full = await run_syncd(config_dir, "sync", "acme", "alice-work", "--full")
    assert full.code == 0, full
    assert full.counts() == (0, 0, 0, 0)
    assert spine.writes() == before
    assert (await RedisStore(spine.pool).get_status(REF)).full is True


@RADICALE_ONLY
async def test_sync_of_a_whole_tenant(spine: Spine, config_dir: Path) -> None:
    """sync TENANT without a binding reconciles each of its bindings, one summary line each."""
    await spine.api.create("u-alice", timed_event("Kick-off", day=23))
    result = await run_syncd(config_dir, "sync", "acme")
    assert result.code == 0, result
    assert result.counts() == (1, 0, 0, 0)


@RADICALE_ONLY
async def test_a_failing_binding_does_not_stop_the_others(
    spine: Spine, tmp_path: Path, redis_url: str
) -> None:
    """sync TENANT: a binding whose CalDAV server is down fails alone; the next one syncs."""
    cal = spine.calendar
    root = write_config(tmp_path / "cli", spine.sandbox, cal.url, redis_url, auth=cal.auth)
    tenant_file = root / "tenants" / "acme.yaml"
    broken = (
        "bindings:\n  - id: bob-gone\n    dingtalk_user: u-bob\n"
        f'    caldav: {{url: "http://127.0.0.1:{free_port()}/nowhere/"}}\n'
    )
    tenant_file.write_text(tenant_file.read_text().replace("bindings:\n", broken, 1))
    await spine.api.create("u-alice", timed_event("Kick-off", day=23))
    result = await run_syncd(root, "sync", "acme")
    assert result.code == 1, result
    assert result.counts() == (1, 0, 0, 0)
    assert result.lines == [result.lines[-1]]  # only alice-work's summary
    [failure] = [ln for ln in result.stderr.splitlines() if ln.startswith("syncd: ")]
    assert failure.startswith("syncd: acme/bob-gone: SourceUnavailable: ")
    assert "Traceback" not in result.stderr
    assert summaries((await spine.caldav_items()).items) == ["Kick-off"]


@RADICALE_ONLY
async def test_dry_run_prints_the_plan_and_writes_nothing(spine: Spine, config_dir: Path) -> None:
    """--dry-run lists the planned create; CalDAV, DingTalk, cursors and status stay untouched."""
    await spine.api.create("u-alice", timed_event("Design review", day=22))
    dav_before, writes_before = await spine.caldav_items(), spine.writes()
    result = await run_syncd(config_dir, "sync", "acme", "alice-work", "--dry-run")
    assert result.code == 0, result
    [plan_line, _] = result.lines
    assert plan_line.startswith("  plan: create caldav: ")
    assert "'Design review'" in plan_line
    assert result.counts() == (1, 0, 0, 0)  # what would be done
    assert (await spine.caldav_items()).items == dav_before.items == ()
    assert spine.writes() == writes_before
    store = RedisStore(spine.pool)
    assert [await store.get_cursor(REF, side) for side in Side] == [None, None]
    assert await store.load_pairs(REF) == {}
    assert await store.get_status(REF) == RunStatus()


@RADICALE_ONLY
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sync", "acme", "nope"), "tenant 'acme' has no binding 'nope'"),
        (("sync", "initech"), "no tenant 'initech' in the configuration"),
        (("sync", "initech", "alice-work"), "no tenant 'initech' in the configuration"),
        (("status", "initech"), "no tenant 'initech' in the configuration"),
        (("conflicts", "initech"), "no tenant 'initech' in the configuration"),
        (("replay", "initech"), "no tenant 'initech' in the configuration"),
    ],
)
async def test_unknown_names_exit_2_with_one_line(
    spine: Spine, config_dir: Path, args: tuple[str, ...], message: str
) -> None:
    """An unknown tenant or binding → exit 2, one readable stderr line, nothing on stdout."""
    result = await run_syncd(config_dir, *args)
    assert result.code == 2, result
    assert result.stderr.strip() == message
    assert result.stdout == ""


@RADICALE_ONLY
async def test_sync_waits_for_a_running_worker(spine: Spine, config_dir: Path) -> None:
    """While a worker holds the binding's lock, sync waits for it instead of racing."""
    await spine.api.create("u-alice", timed_event("Design review", day=22))
    async with queue.binding_lock(spine.pool, REF) as lock:
        assert lock.held
        clients = len(await spine.pool.client_list())
        proc = asyncio.create_task(run_syncd(config_dir, "sync", "acme", "alice-work"))
        await _connected(spine, more_than=clients)  # started, however loaded the machine is
        await asyncio.sleep(1.5)  # and found the lock held
        assert not proc.done()
        assert (await spine.caldav_items()).items == ()
    result = await proc
    assert result.code == 0, result
    assert "sync_waiting_for_lock" in result.stderr
    assert result.counts() == (1, 0, 0, 0)
    assert await spine.pool.get(keys.binding_key(REF, keys.LOCK)) is None


async def _connected(spine: Spine, more_than: int) -> None:
    """Wait (up to 60 s) until Redis has more clients than ``more_than``."""
    for _ in range(600):
        if len(await spine.pool.client_list()) > more_than:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the command never connected to Redis")


@RADICALE_ONLY
async def test_progress_in_a_terminal_keeps_the_summary_line_whole(
    spine: Spine, config_dir: Path
) -> None:
    """On a terminal the progress bar is drawn, and the summary still ends the output intact."""
    for day in (20, 21, 22):
        await spine.api.create("u-alice", timed_event(f"Meeting {day}", day=day))
    primary, secondary = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        SYNCD,
        "sync",
        "acme",
        "alice-work",
        "--config",
        str(config_dir),
        stdout=secondary,
        stderr=secondary,
        env={**command_env(), "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(secondary)
    reader = asyncio.create_task(asyncio.to_thread(_read_all, primary))
    assert await asyncio.wait_for(proc.wait(), 90) == 0
    output = (await reader).decode()
    os.close(primary)
    assert "acme/alice-work  [####################################]  100%" in output
    assert "[info" not in output  # info logs would tear the bar on a terminal
    last = output.replace("\r\n", "\n").rstrip("\n").split("\n")[-1]
    assert SUMMARY.fullmatch(last), output
    assert last.startswith("acme/alice-work: created=3 ")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# --- status -----------------------------------------------------------------------------------


@RADICALE_ONLY
async def test_status_before_and_after_a_sync(spine: Spine, config_dir: Path) -> None:
    """status shows never-run first; after a sync: state ok, pairs=1, as text and as JSON."""
    never = await run_syncd(config_dir, "status")
    assert never.code == 0, never
    assert never.lines == [
        "acme/alice-work: state=never-run last_success=- lag=- pairs=0 conflicts=0 dead_letters=0"
    ]
    none = await run_syncd(config_dir, "conflicts")
    assert (none.code, none.lines) == (0, ["no conflicts"])
    assert json.loads((await run_syncd(config_dir, "conflicts", "--json")).stdout) == []
    await spine.api.create("u-alice", timed_event("Retro", day=24))
    assert (await run_syncd(config_dir, "sync", "acme", "alice-work")).code == 0

    text = await run_syncd(config_dir, "status", "acme")
    assert text.code == 0, text
    [line] = text.lines
    assert line.startswith("acme/alice-work: state=ok last_success=20")
    assert "pairs=1 conflicts=0 dead_letters=0" in line

    as_json = await run_syncd(config_dir, "status", "--json")
    assert as_json.code == 0, as_json
    [row] = json.loads(as_json.stdout)  # stdout is pure JSON
    assert (row["binding"], row["state"], row["pairs"]) == ("acme/alice-work", "ok", 1)
    assert (row["conflicts"], row["dead_letters"]) == (0, 0)
    assert row["last_success"] == row["last_run"]
    assert re.fullmatch(r"\d+s", row["lag"])


async def test_redis_unreachable_is_exit_1_with_one_line(tmp_path: Path) -> None:
    """With Redis down, status fails fast: exit 1, one 'syncd: ...' line, no traceback."""
    root = tmp_path / "cfg"
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(
        f"redis_url: redis://127.0.0.1:{free_port()}/0\nlog: {{format: console}}\n"
    )
    started = time.monotonic()
    result = await run_syncd(root, "status")
    assert time.monotonic() - started < 15
    assert result.code == 1, result
    assert result.stdout == ""
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("syncd: ")]
    assert errors == [errors[0]]
    assert errors[0].startswith("syncd: StoreUnavailable: redis unavailable")
    assert "Traceback" not in result.stderr


# --- conflicts --------------------------------------------------------------------------------


@RADICALE_ONLY
@pytest.mark.parametrize("policy", ["caldav", "dingtalk"])
async def test_conflicts_lists_a_decided_conflict(
    spine: Spine, tmp_path: Path, redis_url: str, policy: str
) -> None:
    """Both sides edit one event between syncs: the policy decides; conflicts --json shows it."""
    cal = spine.calendar
    root = write_config(
        tmp_path / "cli", spine.sandbox, cal.url, redis_url, auth=cal.auth, conflict=policy
    )
    created = await spine.api.create("u-alice", timed_event("Budget", day=25))
    assert (await run_syncd(root, "sync", "acme", "alice-work")).code == 0
    [item] = (await spine.caldav_items()).items

    status, _ = await spine.api.call(
        "PUT",
        spine.api.events("u-alice", f"/{created['id']}"),
        json={"id": created["id"], "summary": "Budget (DingTalk edit)"},
    )
    assert status == 200
    edited = item.text.replace("SUMMARY:Budget", "SUMMARY:Budget (CalDAV edit)")
    assert edited != item.text
    status, _ = spine.calendar.put_raw(item.href.rsplit("/", 1)[1], edited)
    assert status in (201, 204)

    result = await run_syncd(root, "sync", "acme", "alice-work")
    assert result.code == 0, result
    assert result.counts()[3] == 1

    listed = await run_syncd(root, "conflicts", "--json")
    assert listed.code == 0, listed
    [record] = json.loads(listed.stdout)
    assert record["binding"] == "acme/alice-work"
    assert record["winner"] == policy
    assert "summary" in record["fields"]
    assert record["dingtalk"]["summary"] == "Budget (DingTalk edit)"
    assert record["caldav"]["summary"] == "Budget (CalDAV edit)"
    assert record["base"]["summary"] == "Budget"

    winner = "Budget (CalDAV edit)" if policy == "caldav" else "Budget (DingTalk edit)"
    assert [e["summary"] for e in spine.dingtalk_events()] == [winner]
    assert summaries((await spine.caldav_items()).items) == [winner]
    text = await run_syncd(root, "conflicts", "acme")
    assert text.code == 0
    assert f"winner={policy}" in text.lines[0]
    status_json = json.loads((await run_syncd(root, "status", "--json")).stdout)
    assert status_json[0]["conflicts"] == 1


# --- replay -----------------------------------------------------------------------------------


@RADICALE_ONLY
async def test_replay_requeues_a_dead_lettered_binding(spine: Spine, config_dir: Path) -> None:
    """replay queues a full reconcile of a binding with dead letters and clears them."""
    await spine.api.create("u-alice", timed_event("Retro", day=24))
    await spine.settle()  # a normal run first: cursors exist, the queue is empty
    store = RedisStore(spine.pool)
    await store.add_dead_letter(
        REF, DeadLetter("binding", "BadResponse: boom", "t", reason="callback")
    )
    shown = await run_syncd(config_dir, "status")
    assert "dead_letters=1" in shown.stdout

    result = await run_syncd(config_dir, "replay")
    assert result.code == 0, result
    assert result.lines == [
        "acme/alice-work: replayed 1 dead letter(s)",
        "replayed 1 dead letter(s) in 1 binding(s)",
    ]
    assert await store.list_dead_letters(REF) == []
    assert await spine.pool.zcard("arq:queue") == 1
    assert await spine.pool.exists(keys.binding_key(REF, keys.FULL))

    await spine.settle()
    status = await store.get_status(REF)
    assert (status.state, status.full) == ("ok", True)
    assert not await spine.pool.exists(keys.binding_key(REF, keys.FULL))
    again = await run_syncd(config_dir, "replay")
    assert again.lines == ["replayed 0 dead letter(s) in 0 binding(s)"]
    assert await spine.pool.zcard("arq:queue") == 0
