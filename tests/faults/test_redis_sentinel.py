"""A Redis Sentinel failover is weather too: the worker follows the promoted replica.

Real ``redis-server`` master and replica and a real ``redis-server --sentinel`` on
loopback; ``syncd worker`` is configured with a ``redis+sentinel://`` URL. The master is
SIGKILLed; the sentinel promotes the replica; the same worker process carries on.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import (
    caldav_summaries,
    dav_session,
    seed_events,
    start_syncd,
    wait_items,
    write_fault_config,
)
from tests.fixtures.redis_server import RedisServer, start_redis, start_sentinel
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test

MASTER = "mymaster"
BATCH = 20


def _until(check: object, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {within}s")
        time.sleep(0.1)


@pytest.fixture
def sentinel_group() -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    """Master, its replica (in sync) and a sentinel that knows both."""
    master = start_redis()
    replica = start_redis(replica_of=master.port)
    sentinel = start_sentinel(master, MASTER)
    ask = redis.Redis(port=sentinel.port, decode_responses=True)
    rep = redis.Redis(port=replica.port, decode_responses=True)
    try:
        _until(lambda: rep.info("replication").get("master_link_status") == "up", "replica sync")
        _until(lambda: ask.sentinel_slaves(MASTER), "replica known to the sentinel")
        yield master, replica, sentinel
    finally:
        ask.close()
        rep.close()
        for server in (sentinel, replica, master):
            if server.process.poll() is None:
                server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.mark.slow
async def test_worker_follows_a_sentinel_failover(
    tmp_path: Path,
    sandbox: SandboxHandle,
    sandbox_api: SandboxApi,
    radicale_calendar: CalendarHandle,
    sentinel_group: tuple[RedisServer, RedisServer, RedisServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGKILL the master: the sentinel promotes the replica, the worker keeps syncing.

    Events created after the kill reach Radicale through the same worker process; every
    event arrives once; the worker logs the outage once and no traceback.
    """
    master, replica, sentinel = sentinel_group
    url = radicale_calendar.url
    redis_url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0"
    root = write_fault_config(
        tmp_path / "config", sandbox, radicale_calendar, redis_url, poll_interval="1s"
    )
    expected = await seed_events(sandbox_api, BATCH, "before")
    worker = await start_syncd("worker", root, log_dir=tmp_path)
    ask = redis.Redis(port=sentinel.port, decode_responses=True)
    async with dav_session(radicale_calendar) as http:
        try:
            await wait_items(http, url, worker, BATCH, within=60)
            await asyncio.to_thread(master.kill)
            killed = time.monotonic()
            expected += await seed_events(sandbox_api, BATCH, "after")
            await wait_items(http, url, worker, BATCH + 1, within=60)
            failover_s = time.monotonic() - killed
            await wait_items(http, url, worker, 2 * BATCH, within=60)
            summaries = await caldav_summaries(http, url)
            promoted = ask.sentinel_get_master_addr_by_name(MASTER)
            alive = worker.proc.returncode is None
        finally:
            ask.close()
            await worker.kill()
    with capsys.disabled():
        print(
            f"\n[faults] sentinel failover (master SIGKILLed): worker carried on={alive} "
            f"first_sync_after_kill_s={failover_s:.1f} events={len(expected)} "
            f"lost={len(set(expected) - set(summaries))} "
            f"duplicated={len(summaries) - len(set(summaries))}"
        )
    assert int(promoted[1]) == replica.port
    assert alive
    assert sorted(summaries) == sorted(expected)
    assert len(worker.named("redis_lost")) == len(worker.named("redis_back")) == 1
    assert "Traceback" not in worker.text()
