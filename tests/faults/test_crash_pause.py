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
from defusedxml import ElementTree

from syncd.model import BindingRef
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import (
    binding_settled,
    caldav_summaries,
    dav_session,
    seed_events,
    start_syncd,
    wait_items,
    write_fault_config,
)
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test

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
    found = calendar.settled_exchanges()
    return [(e.method, e.path) for e in found if e.method in ("PUT", "DELETE")]


PROPFIND_ETAGS = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)


async def dav_state(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """href -> etag of every item in the collection (a write that landed changes it)."""
    headers = {"Depth": "1"}
    async with http.request("PROPFIND", url, data=PROPFIND_ETAGS, headers=headers) as resp:
        assert resp.status == 207
        tree = ElementTree.fromstring(await resp.read())
    state = {}
    for response in tree.iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        etag = response.findtext(".//{DAV:}getetag")
        if etag and not href.endswith("/"):  # the collection itself is not an item
            state[href] = etag
    return state


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

    Afterwards no item in Radicale changed (a request A had decided on just before the
    pause may still arrive, and is refused by its precondition) and no syncd key in Redis;
    A logged that it lost the lock, abandoned the run without a traceback, and is still
    running. Every event is in Radicale once.
    """
    expected = await seed_events(sandbox_api, EVENTS, "pause")
    url = radicale_calendar.url
    # A fixed hourly poll: no legitimate run (a fast poll after B's copy) may change the
    # store while A wakes, so every change after the wake would be A's.
    settings = {"lock_ttl": f"{LOCK_TTL_S}s", "poll_cadence": "{fast: 1h, idle_factor: 1}"}
    root = write_fault_config(
        tmp_path / "config",
        sandbox,
        radicale_calendar,
        redis_url,
        settings=settings,
        poll_interval="1h",
    )
    a = await start_syncd("worker", root, log_dir=tmp_path)
    b = None
    async with dav_session(radicale_calendar) as http:
        try:
            await wait_items(http, url, a, PAUSE_AT, within=60)
            a.send(signal.SIGSTOP)
            paused = time.monotonic()
            b = await start_syncd("worker", root, log_dir=tmp_path)
            await wait_items(http, url, b, EVENTS, within=90)
            await binding_settled(redis_client, REF)
            taken_over = b.named("reconcile_revived")
            before_store, before_dav = await store_snapshot(redis_client), writes(radicale_calendar)
            before_items = await dav_state(http, url)
            a.send(signal.SIGCONT)
            woke = time.monotonic()
            await a.wait_logged("reconcile_abandoned", within=30)
            await asyncio.sleep(1.0)  # anything A still had in mind would have been sent
            after_store, after_dav = await store_snapshot(redis_client), writes(radicale_calendar)
            after_items = await dav_state(http, url)
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
            f"after waking: caldav_items_changed="
            f"{sum(after_items.get(h) != e for h, e in before_items.items())} "
            f"caldav_write_requests={len(after_dav) - len(before_dav)} "
            f"redis_keys_changed={sum(after_store.get(k) != v for k, v in before_store.items())} "
            f"fenced_store_writes={len(a.named('store_write_fenced'))}"
        )
    assert taken_over, "B served the binding only after A's lock expired, via the revive cron"
    assert len(before_items) == EVENTS
    assert after_items == before_items
    assert after_store == before_store
    assert a.named("lock_lost"), a.text()[-2000:]
    assert "Traceback" not in a.text()
    assert a_alive
    assert sorted(summaries) == sorted(expected)
