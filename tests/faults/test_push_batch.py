"""Redis dies while a batch of pushes waits for its replies (group commit, syncd.store.batch);
and a batch through a Sentinel-managed pool.

Every push of the batch is answered 503 — none ``success``, since nothing tells which of
its scripts ran — and DingTalk's retries after the restart (an empty Redis that has lost
its script cache) are all queued: nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError

from syncd import queue
from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.batch import ScriptBatch
from syncd.store.connection import connect
from tests.fixtures.redis_server import RedisServer, start_redis, start_sentinel
from tests.fixtures.webhook import (
    callback_counts,
    change_push,
    counted_since,
    running_hook,
    sealed_push,
)

PUSHES = 6
REF = BindingRef("acme", "alice-work")


async def _paused(server: RedisServer) -> None:
    """Hold every write (scripts included) for 3 s: replies stay pending until the kill."""
    client = connect(queue.redis_settings(server.url))
    try:
        await client.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    finally:
        await client.aclose()


async def test_every_call_of_a_failed_batch_gets_the_error(own_redis: RedisServer) -> None:
    pool = connect(queue.redis_settings(own_redis.url))
    batch = ScriptBatch("return redis.call('SET', KEYS[1], ARGV[1])")
    try:
        await batch.call(pool, ["warm"], ["1"])  # connected, script cached
        await _paused(own_redis)
        calls = [asyncio.create_task(batch.call(pool, [f"k{i}"], ["1"])) for i in range(5)]
        await asyncio.sleep(0.3)  # the pipeline is written, its replies held
        assert (batch.flushes, batch.calls) == (2, 6)
        own_redis.kill()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
    finally:
        await pool.aclose()


async def test_pushes_of_a_batch_lost_with_redis_are_503_and_their_retries_queued(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    async with running_hook(tmp_path / "config", own_redis.url) as hook:
        status, answer = await hook.push(change_push(["u-alice"]))
        hook.assert_success(status, answer)  # connected, script cached
        pushes = [sealed_push(json.dumps(change_push(["u-alice"]))) for _ in range(PUSHES)]
        sent = queue.QUEUE_DELIVERY.calls
        await _paused(own_redis)
        before = callback_counts("acme")
        posts = [asyncio.create_task(hook.post("acme", q, b)) for q, b in pushes]
        for _ in range(100):  # until every push waits on Redis
            if queue.QUEUE_DELIVERY.calls - sent == PUSHES:
                break
            await asyncio.sleep(0.02)
        assert queue.QUEUE_DELIVERY.calls - sent == PUSHES
        own_redis.kill()
        answers = await asyncio.gather(*posts)
        assert [status for status, _ in answers] == [503] * PUSHES, answers
        assert counted_since(before, "acme") == {"store_unavailable": PUSHES}

        own_redis.start_again()  # empty: no push remembered, no script cached
        for query, body in pushes:  # DingTalk's retries
            status, answer = await hook.post("acme", query, body)
            hook.assert_success(status, answer)
        assert len(await hook.accepted_pushes()) == PUSHES
        assert await hook.dirty() == ["acme/alice-home", "acme/alice-work"]


async def test_a_batch_goes_through_a_sentinel_managed_pool() -> None:
    """``redis+sentinel://``: the pipeline reaches the master the sentinel names."""
    master = start_redis()
    sentinel = start_sentinel(master, "mymaster")
    pool = connect(queue.redis_settings(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0"))
    try:
        flushes = queue.QUEUE_DELIVERY.flushes
        replies = await asyncio.gather(
            *(queue.queue_delivery(pool, "acme", f"s{i}", [REF], "callback:x") for i in range(8))
        )
        assert queue.QUEUE_DELIVERY.flushes - flushes == 1
        assert replies == [[True]] + [[False]] * 7
        direct = connect(queue.redis_settings(master.url))
        try:
            assert await direct.exists(*(keys.push_key("acme", f"s{i}") for i in range(8))) == 8
        finally:
            await direct.aclose()
    finally:
        await pool.aclose()
        for server in (sentinel, master):
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
