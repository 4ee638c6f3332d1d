"""The reconcile queue with real arq workers on Redis: coalescing, none lost, one run at a time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import default_queue_name, result_key_prefix
from arq.jobs import Job
from arq.worker import Worker

from syncd import queue
from syncd.model import BindingRef
from syncd.store import keys

REF = BindingRef("acme", "alice-work")


@dataclass
class Recorder:
    """What the reconcile jobs did, as seen from inside the work."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    work_s: float = 0.0
    active: int = 0
    max_active: int = 0
    runs: list[tuple[str, float]] = field(default_factory=list)  # job id, start time
    outcomes: list[queue.RunOutcome[str]] = field(default_factory=list)

    async def work(self, job_id: str) -> str:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.runs.append((job_id, time.monotonic()))
        self.started.set()
        try:
            await self.gate.wait()
            await asyncio.sleep(self.work_s)
        finally:
            self.active -= 1
        return job_id


async def reconcile(ctx: dict[str, Any], tenant: str, binding: str, reason: str) -> None:
    """The worker's task as the worker module is expected to write it."""
    rec: Recorder = ctx["rec"]
    outcome = await queue.run_exclusive(
        ctx["redis"], BindingRef(tenant, binding), lambda: rec.work(ctx["job_id"])
    )
    rec.outcomes.append(outcome)


async def reconcile_by_hand(ctx: dict[str, Any], tenant: str, binding: str, reason: str) -> None:
    """The same task written with the primitives (lock, take_dirty, rerun_if_dirty)."""
    rec: Recorder = ctx["rec"]
    ref = BindingRef(tenant, binding)
    async with queue.binding_lock(ctx["redis"], ref) as lock:
        if not lock:
            rec.outcomes.append(queue.RunOutcome(ran=False, skipped="locked"))
            return
        await queue.take_dirty(ctx["redis"], ref)
        await rec.work(ctx["job_id"])
    rec.outcomes.append(queue.RunOutcome(ran=True))
    await queue.rerun_if_dirty(ctx["redis"], ref)


def make_worker(redis_url: str, rec: Recorder, **kw: Any) -> Worker:
    """A real arq worker running the reconcile task, polling fast."""
    options: dict[str, Any] = {"poll_delay": 0.005, "handle_signals": False, "burst": True}
    options.update(kw)
    functions = options.pop("functions", [queue.reconcile_function(reconcile)])
    return Worker(
        functions, redis_settings=queue.redis_settings(redis_url), ctx={"rec": rec}, **options
    )


async def drain(worker: Worker) -> None:
    """Run a burst worker until the queue is empty, then close it (and its Redis pool)."""
    try:
        await worker.main()
    finally:
        await worker.close()


async def until(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@asynccontextmanager
async def running(workers: list[Worker], pool: ArqRedis) -> AsyncIterator[None]:
    """Run long-lived workers; on exit wait until the queue is drained, then stop them."""
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        yield
        for _ in range(3):  # drained and idle three polls in a row
            await until(lambda: _idle(workers, pool))
            await asyncio.sleep(0.05)
    finally:  # the loops stop first: closing a worker whose loop runs on leaks its sockets
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in workers:
            await w.close()


async def _gone(pool: ArqRedis, key: str) -> bool:
    return not await pool.exists(key)


async def _idle(workers: list[Worker], pool: ArqRedis) -> bool:
    busy = any(not t.done() for w in workers for t in w.tasks.values())
    return not busy and await pool.zcard(default_queue_name) == 0


async def test_requests_before_a_run_coalesce_into_one(redis_url: str, pool: ArqRedis) -> None:
    """100 requests queued at once give one job and one run; only the first queues a job."""
    rec = Recorder()
    rec.gate.set()
    answers = await asyncio.gather(
        *(queue.request_reconcile(pool, REF, f"r{i}") for i in range(100))
    )
    assert answers.count(True) == 1
    await drain(make_worker(redis_url, rec))
    assert [o.ran for o in rec.outcomes] == [True]
    assert len(rec.runs) == 1
    assert not await pool.exists(keys.binding_key(REF, keys.DIRTY))


async def test_burst_while_worker_polls_is_at_most_two_runs(redis_url: str, pool: ArqRedis) -> None:
    """100 requests within a moment, against a polling worker, make one or two runs, no more."""
    rec = Recorder(work_s=0.3)  # longer than the burst takes to send
    rec.gate.set()
    async with running([make_worker(redis_url, rec, burst=False)], pool):
        await asyncio.gather(*(queue.request_reconcile(pool, REF, f"r{i}") for i in range(100)))
    assert 1 <= len(rec.runs) <= 2
    assert rec.max_active == 1


async def test_request_during_a_run_gets_exactly_one_follow_up(
    redis_url: str, pool: ArqRedis
) -> None:
    """Requests while a run works are not dropped: exactly one follow-up run, which sees them."""
    rec = Recorder()
    assert await queue.request_reconcile(pool, REF, "first")
    worker = make_worker(redis_url, rec, max_jobs=1)
    main = asyncio.create_task(worker.main())
    await asyncio.wait_for(rec.started.wait(), 10)
    answers = [await queue.request_reconcile(pool, REF, f"during-{i}") for i in range(5)]
    assert answers == [True, False, False, False, False]  # a new job id, then coalesced
    asked_last = time.monotonic()
    rec.gate.set()
    await asyncio.wait_for(main, 10)
    await worker.close()
    assert [o.ran for o in rec.outcomes] == [True, True]
    assert not rec.outcomes[0].rerun_queued  # the queued job already covers it
    assert rec.runs[1][1] > asked_last
    assert len({job for job, _ in rec.runs}) == 2


@pytest.mark.parametrize(
    "task", [reconcile, reconcile_by_hand], ids=["run_exclusive", "primitives"]
)
async def test_two_workers_contend_and_the_holder_follows_up(
    redis_url: str, pool: ArqRedis, task: Callable[..., Awaitable[None]]
) -> None:
    """Both ways of writing the task: a request during a run is served by exactly one more run."""
    rec = Recorder()
    fn = [queue.reconcile_function(task)]
    first = make_worker(redis_url, rec, max_jobs=1, functions=fn)
    second = make_worker(redis_url, rec, max_jobs=1, functions=fn)
    assert await queue.request_reconcile(pool, REF, "first")
    main_first = asyncio.create_task(first.main())
    await asyncio.wait_for(rec.started.wait(), 10)
    main_second = asyncio.create_task(second.main())
    asked = time.monotonic()
    assert await queue.request_reconcile(pool, REF, "during")
    await until(lambda: second.jobs_complete == 1)
    rec.gate.set()
    await asyncio.wait_for(asyncio.gather(main_first, main_second), 10)
    await first.close()
    await second.close()
    assert [o.skipped for o in rec.outcomes] == ["locked", None, None]
    assert rec.max_active == 1
    assert rec.runs[1][1] > asked


async def test_racing_workers_under_random_requests(redis_url: str, pool: ArqRedis) -> None:
    """Two workers, requests at random moments: never concurrent, no job id twice, none lost."""
    rec = Recorder(work_s=0.04)
    rec.gate.set()
    last_request = 0.0

    async def client(seed: int) -> None:
        nonlocal last_request
        rnd = random.Random(seed)
        for i in range(20):
            await asyncio.sleep(rnd.uniform(0, 0.05))
            last_request = max(last_request, time.monotonic())
            await queue.request_reconcile(pool, REF, f"c{seed}-{i}")

    workers = [make_worker(redis_url, rec, burst=False) for _ in range(2)]
    async with running(workers, pool):
        await asyncio.gather(*(client(s) for s in range(3)))
    assert rec.max_active == 1
    jobs = [job for job, _ in rec.runs]
    assert len(jobs) == len(set(jobs))
    assert any(o.skipped == "locked" for o in rec.outcomes), "the workers never contended"
    assert max(start for _, start in rec.runs) > last_request
    assert not await pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert len(rec.runs) < 60


async def test_request_storm_while_jobs_race_is_never_refused(
    redis_url: str, pool: ArqRedis
) -> None:
    """800 concurrent requests while instant jobs come and go: each is taken, none is lost.

    Requests racing on one job id make arq's WATCH fail; that once read as a kept result,
    retired generations five times over and refused the request (webhook 503s).
    """
    rec = Recorder()
    rec.gate.set()
    last_request = 0.0

    async def client(n: int) -> None:
        nonlocal last_request
        for i in range(20):
            last_request = max(last_request, time.monotonic())
            await queue.request_reconcile(pool, REF, f"c{n}-{i}")

    workers = [make_worker(redis_url, rec, burst=False, poll_delay=0.001) for _ in range(2)]
    async with running(workers, pool):
        await asyncio.gather(*(client(n) for n in range(40)))
    assert rec.max_active == 1
    assert max(start for _, start in rec.runs) > last_request
    assert not await pool.exists(keys.binding_key(REF, keys.DIRTY))


async def test_stale_generation_job_does_no_work(redis_url: str, pool: ArqRedis) -> None:
    """A job queued under an old generation after its requests were served runs no work."""
    rec = Recorder()
    rec.gate.set()
    assert await queue.request_reconcile(pool, REF, "one")
    await drain(make_worker(redis_url, rec))
    # A requester that read generation 0 before the run started enqueues only now.
    stale = queue.job_id_for(REF, 0)
    assert await pool.enqueue_job(queue.RECONCILE_TASK, REF.tenant, REF.binding, "x", _job_id=stale)
    await drain(make_worker(redis_url, rec))
    assert [o.skipped for o in rec.outcomes] == [None, "clean"]
    assert len(rec.runs) == 1


async def test_forced_run_works_without_a_request(pool: ArqRedis) -> None:
    """force=True (syncd sync) runs the work with no pending request; without it, nothing runs."""

    async def work() -> str:
        return "synced"

    assert (await queue.run_exclusive(pool, REF, work)).skipped == "clean"
    forced = await queue.run_exclusive(pool, REF, work, force=True)
    assert (forced.ran, forced.result) == (True, "synced")


async def test_kept_result_does_not_swallow_requests(redis_url: str, pool: ArqRedis) -> None:
    """A job that failed in arq before our code ran (its result kept an hour) blocks nothing."""
    rec = Recorder()
    rec.gate.set()
    assert await queue.request_reconcile(pool, REF, "to a worker that lacks the task")

    async def unrelated(ctx: dict[str, Any]) -> None:
        """Some other task: this worker does not know reconcile_binding."""

    await drain(make_worker(redis_url, rec, functions=[unrelated]))
    assert await pool.exists(result_key_prefix + queue.job_id_for(REF, 0))
    assert await queue.request_reconcile(pool, REF, "again")
    await drain(make_worker(redis_url, rec))
    assert [o.ran for o in rec.outcomes] == [True]


async def test_failed_work_puts_the_mark_back(pool: ArqRedis) -> None:
    """When the work raises, the error propagates, the mark is restored and no rerun is queued."""

    async def broken() -> None:
        raise ValueError("dingtalk exploded")

    await pool.set(keys.binding_key(REF, keys.DIRTY), "1")
    with pytest.raises(ValueError, match="exploded"):
        await queue.run_exclusive(pool, REF, broken)
    assert await pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert await pool.zcard(default_queue_name) == 0
    assert not await pool.exists(keys.binding_key(REF, keys.LOCK))


async def test_lock_is_refreshed_during_a_long_run(pool: ArqRedis) -> None:
    """A run longer than the lock ttl keeps the lock (refreshed); nobody else can take it."""
    contender_got_it: list[bool] = []

    async def long_work() -> str:
        for _ in range(4):
            await asyncio.sleep(0.4)
            contender_got_it.append(await queue.BindingLock(pool, REF, 1).acquire())
        return "done"

    await pool.set(keys.binding_key(REF, keys.DIRTY), "1")
    outcome = await queue.run_exclusive(pool, REF, long_work, lock_ttl_s=1.0)
    assert outcome.ran
    assert outcome.result == "done"
    assert contender_got_it == [False, False, False, False]


async def test_lost_lock_cancels_the_work(pool: ArqRedis) -> None:
    """If another owner takes the lock mid-run, the work is cancelled and the run ends "lost".

    The request stays recorded as taken by the lost run (the revive cron hands it back
    once the lock is free), the thief's lock is untouched and no follow-up is queued.
    """
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def steal() -> None:
        await asyncio.sleep(0.05)
        await pool.set(keys.binding_key(REF, keys.LOCK), "someone-else")

    await pool.set(keys.binding_key(REF, keys.DIRTY), "1")
    thief = asyncio.create_task(steal())
    outcome = await queue.run_exclusive(pool, REF, slow, lock_ttl_s=0.3)
    await thief
    assert (outcome.ran, outcome.skipped, outcome.rerun_queued) == (False, "lost", False)
    assert cancelled.is_set()
    assert await pool.exists(keys.binding_key(REF, keys.RUNNING))
    assert not await pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert await pool.get(keys.binding_key(REF, keys.LOCK)) == b"someone-else"
    assert await pool.zcard(default_queue_name) == 0


async def test_crashed_owner_lock_expires_and_work_resumes(redis_url: str, pool: ArqRedis) -> None:
    """A dead worker's lock blocks runs only until it expires; then a request runs normally."""
    rec = Recorder()
    rec.gate.set()
    await pool.set(keys.binding_key(REF, keys.LOCK), "crashed-worker", px=1000)
    assert await queue.request_reconcile(pool, REF, "while locked")
    await drain(make_worker(redis_url, rec))
    assert [o.skipped for o in rec.outcomes] == ["locked"]
    await until(lambda: _gone(pool, keys.binding_key(REF, keys.LOCK)))
    assert await queue.request_reconcile(pool, REF, "after expiry")
    await drain(make_worker(redis_url, rec))
    assert [o.skipped for o in rec.outcomes] == ["locked", None]
    assert len(rec.runs) == 1


async def test_queue_delivery_is_one_script_and_falls_back_on_a_kept_result(
    pool: ArqRedis,
) -> None:
    """One push for two bindings: the script queues arq jobs a real arq reader decodes; a
    job id blocked by a kept result goes the slow way, and the push is remembered after."""
    other = BindingRef("acme", "bob-work")
    await pool.set(result_key_prefix + queue.job_id_for(other, 0), b"x")  # blocks gen 0
    queued = await queue.queue_delivery(pool, "acme", "push-1", [REF, other], "callback:x")
    assert queued == [True, True]
    ids = {j.decode() for j in await pool.zrange(default_queue_name, 0, -1)}
    assert ids == {queue.job_id_for(REF, 0), queue.job_id_for(other, 1)}
    info = await Job(queue.job_id_for(REF, 0), redis=pool).info()  # arq's own decoding
    assert info is not None
    assert (info.function, info.args) == (
        queue.RECONCILE_TASK,
        ("acme", "alice-work", "callback:x"),
    )
    assert await pool.exists(keys.binding_key(other, keys.DIRTY))
    assert await queue.seen_delivery(pool, "acme", "push-1")
    assert await queue.queue_delivery(pool, "acme", "push-1", [REF], "callback:x") is None
    assert await queue.queue_delivery(pool, "acme", "push-2", [REF], "callback:x") == [False]
