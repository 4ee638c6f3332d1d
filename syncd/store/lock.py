"""A per-binding Redis lock with a short lease, a heartbeat, and fenced writes.

``SET key token NX PX ttl`` takes it without waiting; refresh and release are Lua
compare-and-act scripts, so an owner whose lock expired can never extend or delete the
lock a successor has taken since. The ttl is short (:data:`DEFAULT_LOCK_TTL_S`) so that a
killed worker costs its binding seconds, not minutes: :func:`run_holding` refreshes the
lock every ``ttl / 3`` while the work runs.

**Why two workers never both write one binding.** Holding the lock, a run's work is
executed with a :class:`~syncd.store.guard.Lease` (token + local deadline) as its current
lease. Three things stop a run whose lock is gone, whatever it was doing when it lost it
(crashed, SIGSTOPped, stuck in a GC pause or a blocked event loop, cut off from Redis):

1. *Store writes are fenced.* Every write of the Redis mapping store to the binding
   (``save_pair``, ``drop_pair``, ``set_cursors``, conflicts, dead letters, status) is a
   Lua script that first compares the lock's value with the lease token and refuses with
   :class:`~syncd.errors.LockLost` otherwise. The lock and the data are in one Redis, so
   check and write are one atomic step: after a successor took the lock, not one store
   write of the old run lands, however late it wakes up.
2. *Side writes check the lease first.* :class:`FencedSide` calls ``Lease.check()`` before
   every create/update/delete; past the local deadline (the send time of the last
   successful refresh plus the ttl; Redis started its own clock later, so the lock is
   surely ours before it) the run is cancelled instead. The monotonic clock runs on
   while a process is stopped, so a woken-up worker fails this check at once.
3. *The heartbeat cancels the work* as soon as a refresh says the lock is not ours, and
   a watchdog timer cancels it at the local deadline when refreshes keep failing
   (Redis unreachable): the work never outlives what it can prove.

What a stale run can still do to the *sides* is bounded to writes whose lease check
passed before its deadline and whose answers it never recorded: at most one write per
pair, already sent or (if the pause fell between the check and the send) sent on waking.
The successor starts from the store the stale run could not change and from the cursors
it could not move (cursors are committed last, fenced), so it reads every such write
back as a change and decides it three-way like any edit:

* a create that landed is found by the successor as a new item and paired with its
  original, by UID (CalDAV copies carry the deterministic UID) or by content (DingTalk
  copies), instead of being created again (:mod:`syncd.sync._unpaired`); a late CalDAV
  create is ``If-None-Match: *`` at that UID, so it fails if the successor was first;
* an update or delete is conditional on the etag (CalDAV ``If-Match``, atomic) or
  ``updateTime`` (DingTalk, checked by a read just before): it either lands on the state
  the stale run read, which the successor then reads as that side's current state (the
  same decision from the same inputs; echo suppression makes it a no-op), or it fails.

The residual risk is DingTalk, which has no atomic precondition: a DingTalk create (or
PATCH) decided before a pause longer than the ttl and sent only after the successor
wrote the same event is not caught, and a late create then duplicates that event.
It takes a pause that lands in the instant between the lease check and the send and
outlasts the ttl; a deterministic ``x-client-token`` per source event would let
DingTalk's own idempotency absorb it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis

from syncd.errors import LockLost, StoreError
from syncd.model import BindingRef, Changes, Event
from syncd.store import keys
from syncd.store.guard import Lease, current_lease, leased, redis_errors
from syncd.sync.ports import CalendarSide, Written

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_LOCK_TTL_S = 15.0
"""A killed worker's binding is free again this long after its last heartbeat."""

_RETRY_S = 0.5  # how soon a failed refresh is tried again

REFRESH_IF_OWNER = """
-- PEXPIRE KEYS[1] to ARGV[2] ms only while it holds the token ARGV[1]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_IF_OWNER = """
-- DEL KEYS[1] only while it holds the token ARGV[1]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class BindingLock:
    """The reconcile lock of one binding, owned by this object's random token.

    ``held`` (also the lock's truth value) says whether this owner believes it holds
    the lock (it may have expired meanwhile: :meth:`refresh` tells for sure).
    ``confirmed_at`` is the monotonic time the last successful acquire/refresh was sent.
    """

    def __init__(self, redis: Redis, ref: BindingRef, ttl_s: float = DEFAULT_LOCK_TTL_S) -> None:
        self.ref = ref
        self.ttl_s = ttl_s
        self.held = False
        self.confirmed_at = 0.0
        self.key = keys.binding_key(ref, keys.LOCK)
        self.token = secrets.token_hex(16)
        self._redis = redis
        self._refresh = redis.register_script(REFRESH_IF_OWNER)
        self._release = redis.register_script(RELEASE_IF_OWNER)

    def __bool__(self) -> bool:
        return self.held

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits. True when taken."""
        sent = time.monotonic()
        with redis_errors("lock_acquire"):
            taken = await self._redis.set(self.key, self.token, nx=True, px=_ms(self.ttl_s))
        self.held = bool(taken)
        if self.held:
            self.confirmed_at = sent
        return self.held

    async def refresh(self) -> bool:
        """Extend the lock to a full ``ttl_s`` again; False if it is no longer ours."""
        sent = time.monotonic()
        with redis_errors("lock_refresh"):
            extended = await self._refresh(keys=[self.key], args=[self.token, _ms(self.ttl_s)])
        self.held = bool(extended)
        if self.held:
            self.confirmed_at = sent
        return self.held

    async def release(self) -> bool:
        """Give the lock up if it is still ours; False if it had expired or been taken."""
        with redis_errors("lock_release"):
            deleted = await self._release(keys=[self.key], args=[self.token])
        self.held = False
        return bool(deleted)


@asynccontextmanager
async def binding_lock(
    redis: Redis, ref: BindingRef, ttl_s: float = DEFAULT_LOCK_TTL_S
) -> AsyncIterator[BindingLock]:
    """Try the binding's lock once; yield it (true if taken) and release it on exit.

    Releasing is best effort: if Redis is unreachable at that moment the failure is
    logged and the lock simply expires after ``ttl_s``.
    """
    lock = BindingLock(redis, ref, ttl_s)
    await lock.acquire()
    try:
        yield lock
    finally:
        if lock.held:
            try:
                await lock.release()
            except StoreError as exc:
                log.warning("lock_release_failed", error=str(exc))


async def run_holding(lock: BindingLock, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` under ``lock``'s lease, refreshing the lock every ``ttl_s / 3``.

    If the lock turns out to be lost (a refresh finds another owner, refreshes keep
    failing until the lease's deadline, a fenced write is refused, or a side write finds
    the deadline passed), ``work`` is cancelled and :class:`~syncd.errors.LockLost`
    raised: two runs must not write one binding at once.
    """
    lease = Lease(lock.ref, lock.token, lock.ttl_s, lock.confirmed_at)
    with leased(lease):
        task = asyncio.create_task(work())
    lease.on_revoke = task.cancel
    keeper = asyncio.create_task(_keep_alive(lock, lease, task))
    try:
        return await task
    except LockLost:
        lease.revoke("a fenced store write was refused")
        raise
    except BaseException as exc:
        # Once the lease is gone (revoked, or past its deadline before the watchdog had a
        # turn), whatever the work ended with (its cancellation, or a Redis timeout that
        # beat it: a worker woken from SIGSTOP finds its reads overdue) means one thing:
        # the run lost its lock, and must neither retry nor put its mark back.
        if not lease.valid():
            lease.revoke("the run ended past its deadline")
            raise LockLost(f"{lock.ref}: reconcile lock lost during the run") from exc
        raise
    finally:
        lease.end()
        keeper.cancel()
        if not task.done():
            task.cancel()


async def _keep_alive(lock: BindingLock, lease: Lease, work: asyncio.Task[Any]) -> None:
    """Refresh every ttl/3; revoke the lease when the lock is gone or its deadline passes.

    Ends with the work even if its own cancellation was lost (redis-py 5 can swallow a
    cancel that lands while it opens a connection): it never outlives the run.
    """
    loop = asyncio.get_running_loop()
    watchdog = loop.call_at(lease.deadline, lease.revoke, "no refresh before the deadline")
    try:
        pause = lock.ttl_s / 3
        while not work.done():
            await asyncio.sleep(pause)
            if work.done():
                return
            try:
                ours = await lock.refresh()
            except StoreError as exc:
                log.warning("lock_refresh_failed", error=str(exc))
                pause = min(_RETRY_S, lock.ttl_s / 3)
                continue
            if work.done():
                return
            if not ours:
                lease.revoke("another owner has the lock")
                return
            lease.confirm(lock.confirmed_at)
            watchdog.cancel()
            watchdog = loop.call_at(lease.deadline, lease.revoke, "no refresh before the deadline")
            pause = lock.ttl_s / 3
    finally:
        watchdog.cancel()


class FencedSide:
    """A :class:`~syncd.sync.ports.CalendarSide` whose writes first check the run's lease.

    Reads pass through. Outside a leased run (dry runs, tests) writes pass through too.
    """

    def __init__(self, inner: CalendarSide) -> None:
        self.inner = inner
        self.side = inner.side

    @staticmethod
    def _check() -> None:
        lease = current_lease()
        if lease is not None:
            lease.check()

    async def changes(self, cursor: str | None) -> Changes:
        """The inner side's changes (reading needs no lease)."""
        return await self.inner.changes(cursor)

    async def create(self, event: Event) -> Written:
        """Create on the inner side, if the lease still holds."""
        self._check()
        return await self.inner.create(event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Update on the inner side, if the lease still holds."""
        self._check()
        return await self.inner.update(item_id, event, etag)

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete on the inner side, if the lease still holds."""
        self._check()
        await self.inner.delete(item_id, etag)
