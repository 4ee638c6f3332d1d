"""Group commit of the push script (:mod:`syncd.store.batch`) on a real Redis.

Concurrent calls go out as one pipeline, each caller still gets its own reply or its own
error, dedupe holds inside one batch, and a lost script cache (NOSCRIPT) is resent.
"""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from syncd import queue
from syncd.errors import StoreError
from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.batch import ScriptBatch

REF = BindingRef("acme", "alice-work")
BOB = BindingRef("acme", "bob-work")

# Echo ARGV[1] after writing it; refuse "bad" with a script error of its own.
ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('ERR refused ' .. ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


async def test_concurrent_pushes_are_one_pipeline_and_each_is_stored(pool: ArqRedis) -> None:
    batch = queue.QUEUE_DELIVERY
    flushes, calls = batch.flushes, batch.calls
    refs = [[REF], [BOB], [REF, BOB]] * 8
    replies = await asyncio.gather(
        *(
            queue.queue_delivery(pool, "acme", f"push-{i}", r, "callback:x")
            for i, r in enumerate(refs)
        )
    )
    assert (batch.flushes - flushes, batch.calls - calls) == (1, len(refs))
    assert replies[0] == [True]  # first in the pipeline: queued
    assert replies[1] == [True]
    assert all(r is not None and not any(r) for r in replies[2:])  # coalesced
    for i in range(len(refs)):
        assert await queue.seen_delivery(pool, "acme", f"push-{i}")
    assert await pool.zcard("arq:queue") == 2
    assert await pool.exists(keys.binding_key(BOB, keys.DIRTY))


async def test_dedupe_holds_inside_one_batch(pool: ArqRedis) -> None:
    """DingTalk's retry arriving with the push itself: exactly one of them is queued."""
    replies = await asyncio.gather(
        *(queue.queue_delivery(pool, "acme", "same", [REF], "callback:x") for _ in range(5))
    )
    assert replies.count(None) == 4
    assert [True] in replies


async def test_a_call_gets_its_own_error_and_the_others_their_replies(pool: ArqRedis) -> None:
    batch = ScriptBatch(ECHO)
    args = ["a", "bad", "c"]
    replies = await asyncio.gather(
        *(batch.call(pool, [f"k{i}"], [a]) for i, a in enumerate(args)), return_exceptions=True
    )
    assert replies[0] == b"a"
    assert isinstance(replies[1], ResponseError)
    assert "refused bad" in str(replies[1])
    assert replies[2] == b"c"
    assert await pool.mget("k0", "k1", "k2") == [b"a", None, b"c"]
    assert batch.flushes == 1


@pytest.mark.parametrize("callers", [1, 6])
async def test_a_lost_script_cache_is_sent_again(pool: ArqRedis, callers: int) -> None:
    """After a Redis restart the script cache is empty: EVALSHA gets NOSCRIPT, EVAL follows."""
    batch = ScriptBatch(ECHO)
    await batch.call(pool, ["warm"], ["w"])
    await pool.script_flush()
    assert await pool.script_exists(batch.sha) == [False]
    replies = await asyncio.gather(*(batch.call(pool, [f"k{i}"], [str(i)]) for i in range(callers)))
    assert replies == [str(i).encode() for i in range(callers)]
    assert await pool.script_exists(batch.sha) == [True]


async def test_a_script_error_of_queue_delivery_is_a_store_error(pool: ArqRedis) -> None:
    """A wrong key type (another process's data): that push is refused, its neighbour not."""
    await pool.lpush(keys.binding_key(BOB, keys.GENERATION), "x")  # GET fails
    good, bad = await asyncio.gather(
        queue.queue_delivery(pool, "acme", "ok", [REF], "callback:x"),
        queue.queue_delivery(pool, "acme", "wrong", [BOB], "callback:x"),
        return_exceptions=True,
    )
    assert good == [True]
    assert isinstance(bad, StoreError)
    assert await queue.seen_delivery(pool, "acme", "ok")
    assert not await queue.seen_delivery(pool, "acme", "wrong")


async def test_a_caller_cancelled_before_the_flush_is_not_sent(pool: ArqRedis) -> None:
    batch = ScriptBatch(ECHO)
    calls = [asyncio.create_task(batch.call(pool, [f"k{i}"], [str(i)])) for i in range(3)]
    await asyncio.sleep(0)  # all three joined the batch; its flush has not run yet
    calls[1].cancel()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[0] == b"0"
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert outcomes[2] == b"2"
    assert await pool.mget("k0", "k1", "k2") == [b"0", None, b"2"]
    assert (batch.flushes, batch.calls) == (1, 3)
