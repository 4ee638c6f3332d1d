"""Keep an arq worker running through Redis outages, and stop it within a bounded time.

arq's ``Worker.main()`` ends with an exception at the first Redis error of its poll
loop. :func:`supervise` runs it in a loop instead: when Redis is lost it lets the jobs
in flight finish or fail for a few seconds (:data:`LOST_GRACE_S`), cancels the rest,
closes the worker's resources (HTTP session, Redis client) and waits for Redis with
exponential backoff (:data:`BACKOFF_S`), then starts a fresh worker. The process logs
``redis_lost`` and ``redis_back`` once each (:mod:`syncd.store.guard`), not a traceback.

Nothing is lost meanwhile: an abandoned reconcile puts its dirty mark back when it can,
and otherwise leaves its running record, which the revive cron turns back into a request
once its lock has expired (:mod:`syncd.queue`); jobs still queued in Redis wait there.

On ``stop`` (SIGTERM/SIGINT) the worker takes no new job, running jobs get until
``shutdown_timeout`` minus :data:`CANCEL_GRACE_S` to finish, and the rest are cancelled:
a cancelled reconcile stops before its next write, puts its mark back and releases its
lock, and arq re-queues the job for the next worker (its cursors did not move, so the
next run redoes exactly what is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial
from typing import Literal

import structlog
from arq.connections import ArqRedis
from arq.worker import Worker
from redis.exceptions import RedisError

from syncd.config import Config
from syncd.config.live import LiveConfig
from syncd.errors import StoreError, SyncdError
from syncd.store.connection import connect, redis_settings, warn_if_not_persistent
from syncd.store.guard import REACHABILITY, redis_errors
from syncd.worker.settings import create_worker

log = structlog.get_logger(__name__)

BACKOFF_S = (0.5, 5.0)
"""First and longest wait between attempts to reach a lost Redis."""
LOST_GRACE_S = 5.0
"""How long jobs in flight may go on once Redis is lost, before they are cancelled."""
CANCEL_GRACE_S = 5.0
"""Of the shutdown timeout, what is kept for cancelled jobs to clean up and close."""

# arq's loop talks to nothing but Redis: any Redis error there (a connection lost under a
# WATCH surfaces as WatchError; READONLY, LOADING, OOM as replies) means "Redis trouble".
_REDIS_TROUBLE = (RedisError, OSError, StoreError)

Ended = Literal["stop", "lost"]


async def supervise(source: Config | LiveConfig, stop: asyncio.Event) -> None:
    """Run arq workers for ``config`` until ``stop`` is set, surviving Redis outages.

    With a :class:`LiveConfig`, a reload reaches the running worker: jobs that start
    afterwards see the new tenants (``ctx["config"]``). Raises ``SyncdError`` if a worker
    fails for a reason other than Redis.
    """
    live = source if isinstance(source, LiveConfig) else LiveConfig(source)
    config = live.current
    settings = redis_settings(config.settings.redis_url)
    asyncio.get_running_loop().set_exception_handler(_quiet_redis_trouble)
    while not stop.is_set():
        pool = connect(settings)
        if not await _until_reachable(pool, stop):
            await pool.aclose()
            return
        with contextlib.suppress(StoreError):  # Redis went again: the worker notices
            await warn_if_not_persistent(pool)
        worker = create_worker(live.current, redis_pool=pool)
        unsubscribe = live.subscribe(partial(_swap_config, worker))
        main = asyncio.create_task(worker.main())
        log.info("worker_started", functions=len(worker.functions))
        ended: Ended = "stop"
        try:
            ended = await _run(main, stop)
        finally:  # a worker that failed for another reason is closed all the same
            unsubscribe()
            stopping = config.settings.shutdown_timeout - CANCEL_GRACE_S
            await dispose(worker, main, max(stopping, 0.0) if ended == "stop" else LOST_GRACE_S)
            with contextlib.suppress(RedisError, OSError):
                await pool.aclose()  # ours: arq's own close() would need Redis


def _swap_config(worker: Worker, config: Config) -> None:
    """A reload: jobs started from now on use ``config`` (running ones keep theirs)."""
    worker.ctx["config"] = config


def _quiet_redis_trouble(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """One line, not a traceback, for an arq task that died of Redis trouble unseen.

    arq finishes each job in a task of its own; when Redis goes while that task writes
    the job's result, nobody awaits it any more and asyncio would print the traceback.
    """
    exc = context.get("exception")
    if isinstance(exc, _REDIS_TROUBLE):
        log.warning("worker_task_redis_error", error=f"{type(exc).__name__}: {exc}")
        return
    loop.default_exception_handler(context)


async def _until_reachable(pool: ArqRedis, stop: asyncio.Event) -> bool:
    """Ping until Redis answers (True) or ``stop`` is set (False), backing off."""
    delay, longest = BACKOFF_S
    while not stop.is_set():
        try:
            with redis_errors("ping"):
                await pool.ping()
            return True
        except StoreError:
            pass  # logged once by REACHABILITY
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, longest)
    return False


async def _run(main: asyncio.Task[None], stop: asyncio.Event) -> Ended:
    """Wait for ``stop`` or for the worker's loop to end; say which."""
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not main.done() or main.cancelled():
        return "stop"
    exc = main.exception()
    if exc is None:
        return "stop"
    if isinstance(exc, _REDIS_TROUBLE):
        REACHABILITY.lost(f"{type(exc).__name__}: {exc}")
        return "lost"
    raise SyncdError(f"worker failed: {type(exc).__name__}: {exc}") from exc


async def dispose(worker: Worker, main: asyncio.Task[None], grace_s: float) -> None:
    """Stop taking jobs, give running ones ``grace_s``, cancel the rest, run ``on_shutdown``.

    Unlike ``Worker.close()`` this works with Redis gone (nothing here needs it); the
    Redis client passed to the worker is the caller's to close.
    """
    started = time.monotonic()
    worker.allow_pick_jobs = False
    jobs = list(worker.tasks.values())
    running = [t for t in jobs if not t.done()]
    finished = 0
    if running and grace_s > 0:
        done, _ = await asyncio.wait(running, timeout=grace_s)
        finished = len(done)
    for task in running:
        task.cancel()
    main.cancel()
    await asyncio.wait([main, *running], timeout=CANCEL_GRACE_S - 1)
    for task in jobs:  # retrieved here (also those that failed before the loop ended):
        if task.done() and not task.cancelled():  # their errors (Redis gone) were expected
            task.exception()
    if REACHABILITY.up:
        with contextlib.suppress(StoreError), redis_errors("health_check_key"):
            await worker.pool.delete(worker.health_check_key)
    if worker.on_shutdown is not None:
        await worker.on_shutdown(worker.ctx)
    log.info(
        "worker_stopped",
        finished=finished,
        abandoned=len(running) - finished,
        seconds=round(time.monotonic() - started, 1),
    )
