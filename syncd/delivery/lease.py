"""A Redis lease: one holder fleet-wide for a piece of work, taken over when it dies.

``SET key token NX PX ttl`` takes it; the holder renews it every ``ttl / 3`` with a
compare-and-``PEXPIRE`` script and gives it up on stop with a compare-and-``DEL``. Work runs
only while the lease is held: a holder that cannot renew (lost to another, or Redis gone
for a whole ``ttl``) cancels its work at once, before anyone else can take the lease, so two
holders never overlap. A dead holder's lease expires after ``ttl``; the others try every
``retry_s``, so the work resumes within ``ttl + retry_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from redis.asyncio import Redis

from syncd.errors import StoreError
from syncd.store.guard import awaited, redis_errors
from syncd.store.lock import REFRESH_IF_OWNER, RELEASE_IF_OWNER

log = structlog.get_logger(__name__)


class RedisLease:
    """One lease key and this holder's token."""

    def __init__(self, redis: Redis, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        with redis_errors("lease_acquire"):
            return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours."""
        with redis_errors("lease_renew"):
            done = await awaited(
                self.redis.eval(REFRESH_IF_OWNER, 1, self.key, self.token, str(self.ttl_ms))
            )
        return bool(done)

    async def release(self) -> None:
        """Give the lease up (only if still ours)."""
        with redis_errors("lease_release"):
            await awaited(self.redis.eval(RELEASE_IF_OWNER, 1, self.key, self.token))


async def while_held(
    lease: RedisLease,
    work: Callable[[], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    retry_s: float = 1.0,
    name: str = "",
) -> None:
    """Run ``work`` whenever this process holds ``lease``, until ``stop`` is set."""
    while not stop.is_set():
        try:
            held = await lease.acquire()
        except StoreError:
            held = False
        if not held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_s)
            continue
        log.info("lease_taken", lease=name or lease.key)
        task = asyncio.create_task(work())
        why = await _keep(lease, task, stop)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        log.info("lease_ended", lease=name or lease.key, why=why)
        if why != "lost":
            with contextlib.suppress(StoreError):
                await lease.release()


async def _keep(lease: RedisLease, task: asyncio.Task[None], stop: asyncio.Event) -> str:
    """Renew until ``stop`` ("stop"), the work ends ("ended") or the lease is lost ("lost").

    "lost" also when no renewal succeeded for two thirds of the ttl: the work is cancelled
    before the lease can expire and be taken by another process.
    """
    ttl_s = lease.ttl_ms / 1000
    renewed_at = time.monotonic()
    stopper = asyncio.create_task(stop.wait())
    try:
        while True:
            left = renewed_at + ttl_s * 2 / 3 - time.monotonic()
            if left <= 0:
                return "lost"
            await asyncio.wait({task, stopper}, timeout=min(ttl_s / 3, left))
            if stop.is_set():
                return "stop"
            if task.done():
                _log_end(task)
                return "ended"
            sent = time.monotonic()
            left = renewed_at + ttl_s * 2 / 3 - sent
            try:
                if not await asyncio.wait_for(lease.renew(), max(left, 0.001)):
                    return "lost"
                renewed_at = sent
            except (StoreError, TimeoutError):
                continue  # not renewed; the deadline above decides
    finally:
        stopper.cancel()


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("leased_work_failed", error=repr(task.exception()))
