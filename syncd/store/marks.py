"""Small Redis marks of the queue protocol: poll phases, push dedupe, a liveness ping.

Re-exported by :mod:`syncd.queue`, which is where callers find them.
"""

from __future__ import annotations

import zlib

from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import redis_errors


def poll_phase(ref: BindingRef, interval_s: float) -> float:
    """A stable shift in ``[0, interval_s)`` of ``ref``'s poll periods, from its name."""
    return zlib.crc32(str(ref).encode()) % 10_000 / 10_000 * interval_s


def poll_slot(ref: BindingRef, interval_s: float, now: float) -> int:
    """The poll period ``now`` falls in for ``ref``: periods of ``interval_s``, each
    binding's shifted by its own phase, so polls spread over the interval instead of
    every binding falling due on the same cron tick (lockstep)."""
    return int((now + poll_phase(ref, interval_s)) // interval_s)


def next_poll_at(ref: BindingRef, interval_s: float, now: float) -> float:
    """The start of ``ref``'s next poll period after ``now`` (:func:`poll_slot`): polls keep
    the binding's own phase, so they stay spread over the interval."""
    return (poll_slot(ref, interval_s, now) + 1) * interval_s - poll_phase(ref, interval_s)


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
