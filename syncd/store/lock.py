"""A per-binding Redis lock with expiry and an owner token.

``SET key token NX PX ttl`` takes it without waiting; refresh and release are Lua
compare-and-act scripts, so an owner whose lock expired (a crashed or stalled worker) can
never extend or delete the lock a successor has taken since.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis

from syncd.errors import StoreError
from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import redis_errors

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_LOCK_TTL_S = 300.0

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
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
    """

    def __init__(self, redis: Redis, ref: BindingRef, ttl_s: float = DEFAULT_LOCK_TTL_S) -> None:
        self.ref = ref
        self.ttl_s = ttl_s
        self.held = False
        self._redis = redis
        self._key = keys.binding_key(ref, keys.LOCK)
        self._token = secrets.token_hex(16)
        self._refresh = redis.register_script(_REFRESH)
        self._release = redis.register_script(_RELEASE)

    def __bool__(self) -> bool:
        return self.held

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits. True when taken."""
        with redis_errors("lock_acquire"):
            taken = await self._redis.set(self._key, self._token, nx=True, px=_ms(self.ttl_s))
        self.held = bool(taken)
        return self.held

    async def refresh(self) -> bool:
        """Extend the lock to a full ``ttl_s`` again; False if it is no longer ours."""
        with redis_errors("lock_refresh"):
            extended = await self._refresh(keys=[self._key], args=[self._token, _ms(self.ttl_s)])
        self.held = bool(extended)
        return self.held

    async def release(self) -> bool:
        """Give the lock up if it is still ours; False if it had expired or been taken."""
        with redis_errors("lock_release"):
            deleted = await self._release(keys=[self._key], args=[self._token])
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
                log.warning("lock_release_failed", binding=str(ref), error=str(exc))


async def run_holding(lock: BindingLock, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` while refreshing ``lock`` every ``ttl_s / 3``.

    If the lock turns out to be lost (it expired, e.g. Redis was unreachable longer than
    the ttl, and maybe another owner took it), ``work`` is cancelled and ``StoreError``
    raised: two runs must not write one binding at once.
    """
    task = asyncio.create_task(work())
    lost = asyncio.Event()
    keeper = asyncio.create_task(_keep_alive(lock, task, lost))
    try:
        return await task
    except asyncio.CancelledError:
        if lost.is_set():
            raise StoreError(f"{lock.ref}: reconcile lock lost during the run") from None
        raise
    finally:
        keeper.cancel()


async def _keep_alive(lock: BindingLock, task: asyncio.Task[Any], lost: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(lock.ttl_s / 3)
        try:
            if await lock.refresh():
                continue
        except StoreError as exc:
            log.warning("lock_refresh_failed", binding=str(lock.ref), error=str(exc))
            continue
        log.error("lock_lost", binding=str(lock.ref))
        lost.set()
        task.cancel()
        return
