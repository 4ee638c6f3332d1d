"""Redis restarts are weather: ``syncd worker`` keeps running and finishes the work.

A real worker copies events into Radicale while its (persistent) Redis is stopped and
started again, once mid-copy and once while idle, with no supervisor to restart the
worker. The process must stay up, log ``redis_lost``/``redis_back`` once per outage and
no traceback, and every event must arrive exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis

from syncd import queue
from syncd.model import BindingRef
from syncd.store.connection import connect
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
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test

REF = BindingRef("acme", "alice-work")
FIRST, SECOND = 150, 30
LOCK_TTL_S = 5
OUTAGE_S = 3.0


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone that keeps its data across a restart (AOF)."""
    server = start_redis(persist=True)
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
async def client(persistent_redis: RedisServer) -> AsyncIterator[aredis.Redis]:
    """A client of the persistent Redis (reconnects by itself after a restart)."""
    redis = connect(queue.redis_settings(persistent_redis.url))
    yield redis
    await redis.aclose()


async def outage(server: RedisServer, seconds: float) -> float:
    """Stop Redis for ``seconds``, start it again; returns when it is back (monotonic)."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(server.start_again)
    return time.monotonic()


@pytest.mark.slow
async def test_worker_rides_out_redis_restarts_without_a_supervisor(
    tmp_path: Path,
    sandbox: SandboxHandle,
    sandbox_api: SandboxApi,
    radicale_calendar: CalendarHandle,
    persistent_redis: RedisServer,
    client: aredis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two Redis restarts (mid-copy, then idle): one worker process, nothing lost or doubled.

    The job in flight when Redis went away is run again once Redis is back (its lock
    expires, the revive cron hands its request back); the worker logs exactly one
    ``redis_lost`` and one ``redis_back`` per outage, no traceback, no unclosed session.
    """
    expected = await seed_events(sandbox_api, FIRST, "restart")
    url = radicale_calendar.url
    root = write_fault_config(
        tmp_path / "config",
        sandbox,
        radicale_calendar,
        persistent_redis.url,
        settings={"lock_ttl": f"{LOCK_TTL_S}s"},
        poll_interval="1h",
    )
    worker = await start_syncd("worker", root, log_dir=tmp_path)
    async with dav_session(radicale_calendar) as http:
        try:
            await wait_items(http, url, worker, 40, within=60)
            back = await outage(persistent_redis, OUTAGE_S)
            before = len(await caldav_summaries(http, url))
            await wait_items(http, url, worker, before + 1, within=60)
            resumed_s = time.monotonic() - back
            await wait_items(http, url, worker, FIRST, within=90)
            await binding_settled(client, REF)
            await outage(persistent_redis, OUTAGE_S)  # while idle
            await worker.wait_logged("redis_back", within=30, count=2)
            expected += await seed_events(sandbox_api, SECOND, "after")
            await queue.request_reconcile(client, REF, "test")
            await wait_items(http, url, worker, FIRST + SECOND, within=60)
            summaries = await caldav_summaries(http, url)
            alive = worker.proc.returncode is None
        finally:
            await worker.kill()
    text = worker.text()
    with capsys.disabled():
        print(
            f"\n[faults] redis restarts under a worker: outages survived="
            f"{len(worker.named('redis_back'))} (of 2, {OUTAGE_S:.0f}s each, no supervisor) "
            f"events={len(expected)} lost={len(set(expected) - set(summaries))} "
            f"duplicated={len(summaries) - len(set(summaries))} "
            f"copying_resumed_s_after_redis_back={resumed_s:.1f} (lock ttl {LOCK_TTL_S}s)"
        )
    assert alive
    assert sorted(summaries) == sorted(expected)
    assert len(worker.named("redis_lost")) == 2
    assert len(worker.named("redis_back")) == 2
    assert len(worker.named("worker_started")) == 3
    assert "Traceback" not in text
    assert "Unclosed" not in text
