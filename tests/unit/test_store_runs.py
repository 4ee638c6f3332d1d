"""The running record: a request taken by a run that dies is handed back, exactly once.

Against a real Redis: what :func:`syncd.store.runs.find_orphans` considers orphaned (a
record without its lock; a job stuck "in progress" at arq with nobody holding the lock)
and what it leaves alone (a run alive, a failed run that ended properly), and
:func:`syncd.queue.revive_orphans` queueing the revived binding's job.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from arq.constants import default_queue_name, in_progress_key_prefix

from syncd import queue
from syncd.model import BindingRef
from syncd.store import keys, runs
from syncd.store.connection import connect

REF = BindingRef("acme", "alice-work")
OTHER = BindingRef("acme", "bob-work")


def _k(name: str, ref: BindingRef = REF) -> str:
    return keys.binding_key(ref, name)


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    """An arq client of the flushed test Redis."""
    client = connect(queue.redis_settings(redis_url))
    yield client
    await client.aclose()


async def test_taking_the_request_records_the_run(pool: ArqRedis) -> None:
    """take_dirty clears the mark and records the run's token; no mark, no record."""
    assert not await queue.take_dirty(pool, REF, "t1")
    assert not await pool.exists(_k(keys.RUNNING))
    await queue.mark_dirty(pool, REF)
    await queue.mark_full(pool, REF)
    since = await pool.get(_k(keys.DIRTY))  # when the request came (sync lag)
    assert abs(float(since) - time.time()) < 60
    assert await queue.take_dirty(pool, REF, "t1")
    assert await queue.take_full(pool, REF)
    assert not await pool.exists(_k(keys.DIRTY))
    assert await pool.hgetall(_k(keys.RUNNING)) == {b"token": b"t1", b"full": b"1", b"since": since}


async def test_a_failed_run_puts_back_when_its_request_came(pool: ArqRedis) -> None:
    """A failed run restores the dirty mark with the original request's time, not now."""
    await pool.set(_k(keys.DIRTY), "1700000000.000")
    assert await queue.take_dirty(pool, REF, "t1")
    await queue.end_run(pool, REF, "t1", failed=True)
    assert await pool.get(_k(keys.DIRTY)) == b"1700000000.000"


async def test_ending_a_run_forgets_only_its_own_record(pool: ArqRedis) -> None:
    """end_run deletes the record of its token only; a failed run puts the mark back."""
    await queue.mark_dirty(pool, REF)
    await queue.take_dirty(pool, REF, "successor")
    await queue.end_run(pool, REF, "stale", failed=False)
    assert await pool.hget(_k(keys.RUNNING), "token") == b"successor"
    await queue.end_run(pool, REF, "successor", failed=True)
    assert not await pool.exists(_k(keys.RUNNING))
    assert await pool.exists(_k(keys.DIRTY))


async def test_a_crashed_run_is_revived_once_its_lock_is_gone(pool: ArqRedis) -> None:
    """While the dead run's lock lives nothing happens; once it expired its marks (full
    included) come back and a job is queued; a second sweep finds nothing."""
    await queue.mark_dirty(pool, REF)
    await queue.mark_full(pool, REF)
    await queue.take_dirty(pool, REF, "dead")
    await queue.take_full(pool, REF)
    await pool.set(_k(keys.LOCK), "dead")
    assert await queue.revive_orphans(pool, [REF, OTHER]) == 0
    await pool.delete(_k(keys.LOCK))  # its ttl ran out
    assert await queue.revive_orphans(pool, [REF, OTHER]) == 1
    assert await pool.exists(_k(keys.DIRTY))
    assert await pool.exists(_k(keys.FULL))
    assert not await pool.exists(_k(keys.RUNNING))
    assert await pool.zrange(default_queue_name, 0, -1) == [queue.job_id_for(REF, 0).encode()]
    assert await queue.revive_orphans(pool, [REF, OTHER]) == 0


async def test_a_job_stuck_in_progress_moves_to_a_new_generation(pool: ArqRedis) -> None:
    """A worker died after arq handed it the job, before the job began: requests would
    coalesce into that job for arq's whole in-progress ttl. The sweep starts a new
    generation and queues a fresh job instead; with the lock held it does nothing."""
    assert await queue.request_reconcile(pool, REF, "callback")
    stuck = queue.job_id_for(REF, 0)
    await pool.set(in_progress_key_prefix + stuck, "1", px=610_000)
    await pool.set(_k(keys.LOCK), "alive")
    assert await queue.revive_orphans(pool, [REF]) == 0
    await pool.delete(_k(keys.LOCK))
    assert await runs.find_orphans(pool, [REF]) == [(REF, "stuck_job")]
    assert int(await pool.get(_k(keys.GENERATION)) or 0) == 1
    assert await queue.request_reconcile(pool, REF, "the next callback")  # not coalesced
    assert queue.job_id_for(REF, 1).encode() in await pool.zrange(default_queue_name, 0, -1)
