"""SIGTERM under load: ``syncd run`` stops within its bound, acknowledges nothing it did
not store, and loses nothing: after a restart every change reaches the other side.

Real processes on loopback: the sandbox pushes encrypted callbacks to ``syncd run`` (web
and worker in one process) for every event created, a reconcile copying them into
Radicale is running, and events keep being created on both sides when SIGTERM lands and
while the process is gone. Callbacks that were not answered ``success`` are then
delivered again, as DingTalk retries them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import (
    SyncdProcess,
    caldav_summaries,
    dav_session,
    seed_events,
    start_syncd,
    upcoming_event,
    wait_items,
    write_fault_config,
)
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test

SHUTDOWN_TIMEOUT_S = 6
FIRST, DURING, CALDAV_SIDE = 200, 40, 5


async def start_run(root: Path, port: int, log_dir: Path) -> SyncdProcess:
    """``syncd run`` on ``port``, once its webhook is ready."""
    proc = await start_syncd("run", root, "--listen", f"127.0.0.1:{port}", log_dir=log_dir)
    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        started = time.monotonic()
        while not await ready():
            assert proc.proc.returncode is None, proc.text()[-2000:]
            assert time.monotonic() - started < 30, "syncd run never became ready"
            await asyncio.sleep(0.1)
    return proc


def caldav_event(uid: str, summary: str, n: int) -> str:
    """A one-hour VEVENT made in the CalDAV calendar (by a user's client)."""
    body = upcoming_event(summary, n)
    stamp = body["start"]["dateTime"].replace("-", "").replace(":", "")[:15] + "Z"
    end = body["end"]["dateTime"].replace("-", "").replace(":", "")[:15] + "Z"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\nDTEND:{end}\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def redeliver_failed(sandbox: SandboxHandle) -> int:
    """Push again every callback that was never answered ``success`` (DingTalk's retry)."""
    box = sandbox.sandbox
    target = box.targets[sandbox.app_key]
    failed = box.state.failed.pop(sandbox.app_key, [])
    results = [await box.pusher.deliver(target, json.loads(f["callBackData"])) for f in failed]
    assert all(results), "a re-delivered callback was refused again"
    return len(failed)


@pytest.mark.slow
async def test_sigterm_under_load_loses_nothing(
    tmp_path: Path,
    sandbox: SandboxHandle,
    sandbox_api: SandboxApi,
    radicale_calendar: CalendarHandle,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGTERM while callbacks arrive and a reconcile runs; restart; nothing is lost.

    The process exits 0 within the configured shutdown timeout (plus a second), with no
    traceback; after a restart and DingTalk's retries of the refused callbacks, every
    DingTalk event is in Radicale once and every event made in Radicale meanwhile is in
    DingTalk once. No poll runs in between (poll interval 1 h): only what syncd
    acknowledged and stored, and the retries, can bring the changes over.
    """
    url, port = radicale_calendar.url, free_port()
    root = write_fault_config(
        tmp_path / "config",
        sandbox,
        radicale_calendar,
        redis_url,
        settings={"shutdown_timeout": f"{SHUTDOWN_TIMEOUT_S}s"},
        poll_interval="1h",
    )
    expected = await seed_events(sandbox_api, FIRST, "load")
    syncd = first = await start_run(root, port, tmp_path)  # its first poll starts the copy
    sandbox.sandbox.set_callback(sandbox.app_key, f"http://127.0.0.1:{port}/callbacks/acme")
    async with dav_session(radicale_calendar) as http:
        try:
            await wait_items(http, url, syncd, 30, within=60)  # the copy is running
            more = asyncio.create_task(seed_events(sandbox_api, DURING, "during", pace_s=0.1))
            await asyncio.sleep(0.3)  # callbacks of those are arriving, and keep coming
            syncd.send(signal.SIGTERM)
            termed = time.monotonic()
            rc = await syncd.exited(within=SHUTDOWN_TIMEOUT_S + 10)
            stop_s = time.monotonic() - termed
            expected += await more
            for i in range(CALDAV_SIDE):
                radicale_calendar.put_raw(f"dav-{i}.ics", caldav_event(f"dav-{i}", f"dav {i}", i))
            await sandbox.sandbox.drain()  # every push so far: answered or failed
            refused = len(sandbox.sandbox.state.failed.get(sandbox.app_key, []))
            syncd = await start_run(root, port, tmp_path)
            redelivered = await redeliver_failed(sandbox)
            await wait_items(http, url, syncd, FIRST + DURING + CALDAV_SIDE, within=90)
            summaries = await caldav_summaries(http, url)
            dingtalk = await _dingtalk_settled(sandbox, FIRST + DURING + CALDAV_SIDE)
        finally:
            syncd.send(signal.SIGTERM)
            await syncd.exited(within=SHUTDOWN_TIMEOUT_S + 10)
    first_log = first.text()
    with capsys.disabled():
        print(
            f"\n[faults] SIGTERM under load: exit={rc} in {stop_s:.1f}s "
            f"(shutdown_timeout {SHUTDOWN_TIMEOUT_S}s) abandoned_jobs="
            f"{first.named('worker_stopped')[0]['abandoned']} callbacks refused/retried={refused}/"
            f"{redelivered} events={len(expected)}+{CALDAV_SIDE} "
            f"lost={len(set(expected) - set(summaries))} "
            f"duplicated={len(summaries) - len(set(summaries))}"
        )
    assert rc == 0
    assert stop_s < SHUTDOWN_TIMEOUT_S + 1
    assert first.named("worker_stopped")[0]["abandoned"] == 1  # the copy was cut short
    assert "Traceback" not in first_log
    assert refused > 0  # some callbacks met the shutdown or the downtime: none got success
    assert sorted(summaries) == sorted([*expected, *(f"dav {i}" for i in range(CALDAV_SIDE))])
    assert sorted(dingtalk) == sorted(summaries)


async def _dingtalk_settled(sandbox: SandboxHandle, count: int) -> list[str]:
    """The summaries of u-alice's DingTalk events once there are ``count`` of them."""
    started = time.monotonic()
    while True:
        events = [e for e in sandbox.sandbox.events_of("u-alice") if e.get("status") != "cancelled"]
        if len(events) >= count or time.monotonic() - started > 30:
            return [str(e.get("summary")) for e in events]
        await asyncio.sleep(0.3)
