"""A worker paused past its lease (SIGSTOP) wakes up to find it can write nothing.

The case fencing exists for: worker A copies events, is SIGSTOPped (as a GC pause or a
stalled event loop would stop it), its lock expires, worker B takes the binding over and
finishes. Then A gets SIGCONT with requests and store writes it had planned: not one of
them may land, in Radicale or in Redis, and A must end its job cleanly and carry on.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aredis

from syncd.model import BindingRef
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import (
    binding_settled,
    caldav_summaries,
    seed_events,
    start_syncd,
    wait_items,
    write_fault_config,
)
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

REF = BindingRef("acme", "alice-work")
EVENTS = 200
PAUSE_AT = 40
LOCK_TTL_S = 4


async def store_snapshot(redis: aredis.Redis) -> dict[bytes, bytes]:
    """Every syncd key and its serialized value (DUMP), to compare before and after."""
    found = {}
    async for key in redis.scan_iter(match="syncd:*"):
        value = await redis.dump(key)
        if value is not None:
            found[key] = value
    return found


def writes(calendar: CalendarHandle) -> list[tuple[str, str]]:
    """PUT and DELETE requests Radicale logged for the calendar so far."""
    return [r for r in calendar.settled_requests() if r[0] in ("PUT", "DELETE")]


@pytest.mark.slow
async def test_worker_woken_after_its_lease_writes_nothing(
    tmp_path: Path,
    sandbox: SandboxHandle,
    sandbox_api: SandboxApi,
    radicale_calendar: CalendarHandle,
    redis_url: str,
    redis_client: aredis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGSTOP A mid-copy; B takes over after the lock ttl and finishes; SIGCONT A.

    Afterwards Radicale received no PUT or DELETE and Redis no change to any syncd key;
    A logged that it lost the lock, abandoned the run without a traceback, and is still
    running. Every event is in Radicale once.
    """
    expected = await seed_events(sandbox_api, EVENTS, "pause")
    url = radicale_calendar.url
    settings = {"lock_ttl": f"{LOCK_TTL_S}s"}
    root = write_fault_config(
        tmp_path / "config", sandbox, url, redis_url, settings=settings, poll_interval="1h"
    )
    a = await start_syncd("worker", root, log_dir=tmp_path)
    b = None
    async with aiohttp.ClientSession() as http:
        try:
            await wait_items(http, url, a, PAUSE_AT, within=60)
            a.send(signal.SIGSTOP)
            paused = time.monotonic()
            b = await start_syncd("worker", root, log_dir=tmp_path)
            await wait_items(http, url, b, EVENTS, within=90)
            await binding_settled(redis_client, REF)
            taken_over = b.named("reconcile_revived")
            before_store, before_dav = await store_snapshot(redis_client), writes(radicale_calendar)
            a.send(signal.SIGCONT)
            woke = time.monotonic()
            await a.wait_logged("reconcile_abandoned", within=30)
            await asyncio.sleep(1.0)  # anything A still had in mind would have been sent
            after_store, after_dav = await store_snapshot(redis_client), writes(radicale_calendar)
            summaries = await caldav_summaries(http, url)
            a_alive = a.proc.returncode is None
        finally:
            a.send(signal.SIGCONT)
            await a.kill()
            if b is not None:
                await b.kill()
    with capsys.disabled():
        print(
            f"\n[faults] worker SIGSTOP past its lease: paused_s={woke - paused:.1f} "
            f"writes_after_wake: caldav={len(after_dav) - len(before_dav)} "
            f"redis_keys_changed={sum(after_store.get(k) != v for k, v in before_store.items())} "
            f"fenced_store_writes={len(a.named('store_write_fenced'))}"
        )
    assert taken_over, "B served the binding only after A's lock expired, via the revive cron"
    assert after_dav == before_dav
    assert after_store == before_store
    assert a.named("lock_lost"), a.text()[-2000:]
    assert "Traceback" not in a.text()
    assert a_alive
    assert sorted(summaries) == sorted(expected)
