"""The running record: a request taken by a run that dies is handed back, exactly once.

Against a real Redis: what :func:`syncd.store.runs.find_orphans` considers orphaned (a
record without its lock; a job stuck "in progress" at arq with nobody holding the lock)
and what it leaves alone (a run alive, a failed run that ended properly), and
:func:`syncd.queue.revive_orphans` queueing the revived binding's job.
"""

from __future__ import annotations

import time

from arq.connections import ArqRedis
from arq.constants import default_queue_name, in_progress_key_prefix

from syncd import queue
from syncd.model import BindingRef
from syncd.store import keys, runs

REF = BindingRef("acme", "alice-work")
OTHER = BindingRef("acme", "bob-work")


def _k(name: str, ref: BindingRef = REF) -> str:
    return keys.binding_key(ref, name)


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


async def test_the_dingtalk_push_mark_is_taken_and_restored(pool: ArqRedis) -> None:
    """take_dingtalk: listing is due with no recent listing, taken with a push mark (the
    record keeps it), quiet otherwise; a failed run puts the mark back and forgets the
    listing; a finished one does neither."""
    assert await queue.take_dingtalk(pool, REF)  # never listed: due
    await queue.dingtalk_listed(pool, REF, listed=True, committed=True, every_s=60)
    assert 0 < await pool.pttl(_k(keys.LISTED)) <= 60_000
    await queue.mark_dirty(pool, REF)
    assert await queue.take_dirty(pool, REF, "t1")
    assert not await queue.take_dingtalk(pool, REF)  # listed recently, no push: quiet
    await queue.mark_pushed(pool, [REF])
    assert await queue.take_dingtalk(pool, REF)
    assert not await pool.exists(_k(keys.PUSHED))
    assert await pool.hget(_k(keys.RUNNING), "pushed") == b"1"
    await queue.end_run(pool, REF, "t1", failed=True)
    assert await pool.exists(_k(keys.PUSHED))
    assert not await pool.exists(_k(keys.LISTED))
    await queue.dingtalk_listed(pool, REF, listed=True, committed=True, every_s=60)
    await queue.mark_dirty(pool, REF)
    assert await queue.take_dirty(pool, REF, "t2")
    assert await queue.take_dingtalk(pool, REF)
    await queue.end_run(pool, REF, "t2", failed=False)
    assert not await pool.exists(_k(keys.PUSHED))
    assert await pool.exists(_k(keys.LISTED))


async def test_a_run_that_committed_nothing_makes_the_next_list_dingtalk(pool: ArqRedis) -> None:
    """Cursors not committed (a partial run): the last listing is forgotten; a run that did
    not list DingTalk but committed leaves the last listing's freshness alone."""
    await queue.dingtalk_listed(pool, REF, listed=True, committed=True, every_s=60)
    await queue.dingtalk_listed(pool, REF, listed=False, committed=True, every_s=60)
    assert await pool.exists(_k(keys.LISTED))
    await queue.dingtalk_listed(pool, REF, listed=True, committed=False, every_s=60)
    assert not await pool.exists(_k(keys.LISTED))
    assert await queue.take_dingtalk(pool, REF)


async def test_a_crashed_run_gives_back_its_push_mark(pool: ArqRedis) -> None:
    """A run that took the push mark and died: the revive restores it (and forgets the
    last listing), so the revived run lists DingTalk."""
    await queue.dingtalk_listed(pool, REF, listed=True, committed=True, every_s=60)
    await queue.mark_dirty(pool, REF)
    await queue.mark_pushed(pool, [REF])
    assert await queue.take_dirty(pool, REF, "dead")
    assert await queue.take_dingtalk(pool, REF)
    assert await runs.find_orphans(pool, [REF]) == [(REF, "crashed_run")]
    assert await pool.exists(_k(keys.PUSHED))
    assert not await pool.exists(_k(keys.LISTED))


async def test_the_set_of_runs_in_flight_follows_the_record(pool: ArqRedis) -> None:
    """Taking a request adds the binding to the set of runs in flight, ending the run
    removes it; a job in arq's queue makes its binding active too."""
    await queue.mark_dirty(pool, REF)
    assert await queue.take_dirty(pool, REF, "t1")
    assert await runs.active_refs(pool) == {REF}
    await queue.end_run(pool, REF, "t1", failed=False)
    assert not await pool.exists(keys.RUNNING_SET)
    assert await queue.request_reconcile(pool, OTHER, "callback")
    assert await runs.active_refs(pool) == {OTHER}


async def test_a_crashed_run_is_revived_without_looking_at_every_binding(pool: ArqRedis) -> None:
    """The cheap revive (no sweep) finds a crashed run through the set of runs in flight,
    and drops the binding from the set once revived."""
    await queue.mark_dirty(pool, REF)
    await queue.take_dirty(pool, REF, "dead")
    assert await queue.revive_orphans(pool, [REF, OTHER], sweep=False) == 1
    assert await pool.exists(_k(keys.DIRTY))
    assert not await pool.exists(keys.RUNNING_SET)
    assert await pool.zrange(default_queue_name, 0, -1) == [queue.job_id_for(REF, 0).encode()]


async def test_a_stuck_job_is_found_from_arqs_queue(pool: ArqRedis) -> None:
    """The cheap revive finds a job stuck in progress through arq's queue."""
    assert await queue.request_reconcile(pool, REF, "callback")
    await pool.set(in_progress_key_prefix + queue.job_id_for(REF, 0), "1", px=610_000)
    assert await queue.revive_orphans(pool, [REF, OTHER], sweep=False) == 1
    assert int(await pool.get(_k(keys.GENERATION)) or 0) == 1


async def test_a_record_of_an_older_version_is_found_by_the_sweep(pool: ArqRedis) -> None:
    """A running record written before the set existed is invisible to the cheap revive
    and found by the full sweep; a binding not served is left alone."""
    await pool.hset(_k(keys.RUNNING), mapping={"token": "old", "since": "1"})
    assert await queue.revive_orphans(pool, [REF], sweep=False) == 0
    assert await queue.revive_orphans(pool, [OTHER], sweep=True) == 0
    assert await queue.revive_orphans(pool, [REF], sweep=True) == 1
    assert await pool.exists(_k(keys.DIRTY))
