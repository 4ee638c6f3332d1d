"""One Stream connection per tenant across the fleet; a killed holder is replaced in seconds.

Real ``syncd worker`` processes, the in-process sandbox serving Stream mode, a real Redis and
Radicale. Two workers run: only one holds the tenant's connection (the Redis lease). The
holder is SIGKILLed; the other connects within the lease ttl (5 s) plus a retry, and the
change made while nobody was connected reaches CalDAV (DingTalk redelivers what was not
ACKed). Nothing is lost, nothing is copied twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import (
    SyncdProcess,
    caldav_summaries,
    dav_session,
    start_syncd,
    upcoming_event,
    write_fault_config,
)
from tests.fixtures.sandbox import (
    SandboxApi,
    SandboxHandle,
    default_seed,
    sandbox_token,
    start_sandbox,
)
from tests.fixtures.spine import to_stream_delivery

pytestmark = pytest.mark.usefixtures("syncd_reaper")

TAKEOVER_BOUND_S = 10.0  # lease ttl 5 s + retry 1 s + connecting


def stream_config(root: Path, handle: SandboxHandle, cal: CalendarHandle, redis_url: str) -> Path:
    write_fault_config(root, handle, cal, redis_url, poll_interval="1h")
    to_stream_delivery(root)
    return root


async def wait_until(check: Callable[[], bool], within: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"no {what} within {within}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def in_caldav(cal: CalendarHandle, summary: str, within: float) -> None:
    async with dav_session(cal) as http:
        started = time.monotonic()
        while summary not in await caldav_summaries(http, cal.url):
            assert time.monotonic() - started < within, f"{summary!r} not in CalDAV"
            await asyncio.sleep(0.2)


def holder(workers: list[SyncdProcess]) -> SyncdProcess:
    [taken] = [w for w in workers if w.named("lease_taken")]
    return taken


@pytest.mark.slow
async def test_killed_stream_holder_is_taken_over_within_seconds(
    tmp_path: Path,
    radicale_calendar: CalendarHandle,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two workers, one connection; SIGKILL the holder; the other takes over, nothing lost."""
    async with (
        start_sandbox(default_seed(delivery="stream"), stream_ack_timeout=1.0) as handle,
        aiohttp.ClientSession() as session,
    ):
        api = SandboxApi(handle, session, await sandbox_token(handle))
        hub = handle.sandbox.stream
        root = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
        workers = [await start_syncd("worker", root, log_dir=tmp_path) for _ in range(2)]
        await wait_until(lambda: len(hub.open_conns(handle.app_key)) == 1, 30, "connection")
        await asyncio.sleep(2.0)  # the other worker keeps trying the lease, and fails
        assert len(hub.open_conns(handle.app_key)) == 1
        assert hub.counts["connections"] == 1
        await api.create("u-alice", upcoming_event("Before the kill", 1))
        await in_caldav(radicale_calendar, "Before the kill", within=20)

        dead = holder(workers)
        await dead.kill()
        killed = time.monotonic()
        await api.create("u-alice", upcoming_event("After the kill", 2))
        survivor = next(w for w in workers if w is not dead)
        await survivor.wait_logged("lease_taken", within=TAKEOVER_BOUND_S)
        await wait_until(lambda: hub.counts["connections"] == 2, TAKEOVER_BOUND_S, "takeover")
        takeover_s = time.monotonic() - killed
        await in_caldav(radicale_calendar, "After the kill", within=20)
        async with dav_session(radicale_calendar) as http:
            summaries = await caldav_summaries(http, radicale_calendar.url)
        await survivor.kill()
    with capsys.disabled():
        print(f"\n[faults] stream holder SIGKILL: takeover {takeover_s:.1f}s (lease ttl 5s)")
    assert takeover_s < TAKEOVER_BOUND_S
    assert sorted(summaries) == ["After the kill", "Before the kill"]
