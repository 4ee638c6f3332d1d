"""A killed worker costs its binding seconds, and loses or duplicates nothing.

Real processes on loopback: ``syncd worker`` children copy a few hundred new DingTalk
events (the in-process sandbox) into a real Radicale calendar through a real Redis. The
worker is SIGKILLed mid-copy, several times, and a fresh one started at once, as a
supervisor would. The binding's lock of the dead worker must not block the new one for
longer than the lock ttl: the revive cron hands the dead run's request back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aredis

from syncd.model import BindingRef
from syncd.store import keys
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
EVENTS = 300
KILL_AT = (80, 200)  # SIGKILL once this many copies have arrived
LOCK_TTL_S = 15.0  # the default
RECOVERY_BOUND_S = 30.0


@pytest.mark.slow
async def test_sigkilled_worker_mid_copy_is_taken_over_within_the_bound(
    tmp_path: Path,
    sandbox: SandboxHandle,
    sandbox_api: SandboxApi,
    radicale_calendar: CalendarHandle,
    redis_url: str,
    redis_client: aredis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGKILL a real worker twice while it copies 300 events; restart it each time.

    Each time the binding is served again within 30 s of the kill (the lock ttl plus a
    revive tick), and at the end every event is in Radicale exactly once, DingTalk holds
    no copy back, and the store maps all 300 pairs.
    """
    expected = await seed_events(sandbox_api, EVENTS, "kill")
    url = radicale_calendar.url
    root = write_fault_config(
        tmp_path / "config", sandbox, radicale_calendar, redis_url, poll_interval="1h"
    )
    worker = await start_syncd("worker", root, log_dir=tmp_path)
    recoveries: list[float] = []
    async with dav_session(radicale_calendar) as http:
        try:
            for threshold in KILL_AT:
                await wait_items(http, url, worker, threshold, within=120)
                await worker.kill()
                killed = time.monotonic()
                worker = await start_syncd("worker", root, log_dir=tmp_path)
                await asyncio.sleep(1.0)  # requests sent before the kill have landed by now
                before = len(await caldav_summaries(http, url))
                await wait_items(http, url, worker, before + 1, within=RECOVERY_BOUND_S + 10)
                recoveries.append(time.monotonic() - killed)
            await wait_items(http, url, worker, EVENTS, within=120)
            await binding_settled(redis_client, REF)
            summaries = await caldav_summaries(http, url)
        finally:
            await worker.kill()
    duplicated = len(summaries) - len(set(summaries))
    lost = len(set(expected) - set(summaries))
    with capsys.disabled():
        print(
            f"\n[faults] worker SIGKILL mid-copy: kills survived={len(recoveries)} "
            f"events={EVENTS} lost={lost} duplicated={duplicated} "
            f"recovery_s={[round(r, 1) for r in recoveries]} (lock ttl {LOCK_TTL_S:.0f}s)"
        )
    assert sorted(summaries) == sorted(expected)
    assert max(recoveries) < RECOVERY_BOUND_S
    assert len(sandbox.sandbox.events_of("u-alice")) == EVENTS
    assert await redis_client.hlen(keys.binding_key(REF, keys.PAIRS)) == EVENTS
