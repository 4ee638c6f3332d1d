"""Small Redis marks of the queue protocol: poll pacing, push dedupe, a liveness ping.

Re-exported by :mod:`syncd.queue`, which is where callers find them.
"""

from __future__ import annotations

from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import redis_errors


async def poll_due(redis: Redis, ref: BindingRef, interval_s: float) -> bool:
    """True at most once per ``interval_s`` per binding, across all workers (cron polls)."""
    with redis_errors("poll_due"):
        key = keys.binding_key(ref, keys.POLL)
        return bool(await redis.set(key, "1", nx=True, px=max(1, int(interval_s * 1000))))


async def ping(redis: Redis) -> None:
    """Raise ``StoreUnavailable`` unless Redis answers (readiness checks)."""
    with redis_errors("ping"):
        await redis.ping()


async def seen_delivery(redis: Redis, tenant: str, push_id: str) -> bool:
    """True if :func:`first_delivery` already accepted ``push_id`` for ``tenant``."""
    with redis_errors("seen_delivery"):
        return bool(await redis.exists(keys.push_key(tenant, push_id)))


async def first_delivery(redis: Redis, tenant: str, push_id: str, ttl_s: int = 86400) -> bool:
    """True the first time ``push_id`` is seen for ``tenant`` within ``ttl_s`` (webhook dedupe)."""
    with redis_errors("first_delivery"):
        return bool(await redis.set(keys.push_key(tenant, push_id), "1", nx=True, ex=ttl_s))
