"""The per-binding lock on a real Redis: exclusive, expiring, owner-checked."""

from __future__ import annotations

import asyncio

import redis.asyncio as aredis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.lock import BindingLock, binding_lock

REF = BindingRef("acme", "alice-work")


async def test_lock_is_exclusive_and_released(redis_client: aredis.Redis) -> None:
    """While one owner holds the lock nobody else gets it; after release the next one does."""
    async with binding_lock(redis_client, REF, ttl_s=30) as first:
        assert first.held
        async with binding_lock(redis_client, REF, ttl_s=30) as second:
            assert not second.held
        assert await redis_client.exists(keys.binding_key(REF, keys.LOCK))  # loser left it alone
    assert not await redis_client.exists(keys.binding_key(REF, keys.LOCK))
    async with binding_lock(redis_client, REF) as third:
        assert third.held


async def test_other_bindings_and_tenants_have_their_own_lock(redis_client: aredis.Redis) -> None:
    """Holding one binding's lock does not block another binding or another tenant's binding."""
    async with binding_lock(redis_client, REF) as held:
        assert held.held
        assert await BindingLock(redis_client, BindingRef("acme", "other")).acquire()
        assert await BindingLock(redis_client, BindingRef("globex", "alice-work")).acquire()


async def test_expired_lock_is_taken_over_and_old_owner_cannot_touch_it(
    redis_client: aredis.Redis,
) -> None:
    """A crashed owner's lock expires; its late refresh/release cannot touch the successor's."""
    crashed = BindingLock(redis_client, REF, ttl_s=1.0)
    assert await crashed.acquire()
    successor = BindingLock(redis_client, REF, ttl_s=30)
    assert not await successor.acquire()
    await asyncio.sleep(1.1)
    assert await successor.acquire()
    assert not await crashed.refresh()
    assert not await crashed.release()
    assert await successor.refresh()
    assert 29_000 < await redis_client.pttl(keys.binding_key(REF, keys.LOCK)) <= 30_000


async def test_refresh_extends_the_expiry(redis_client: aredis.Redis) -> None:
    """refresh() by the owner pushes the expiry back to a full ttl."""
    lock = BindingLock(redis_client, REF, ttl_s=1.0)
    assert await lock.acquire()
    for _ in range(3):
        await asyncio.sleep(0.4)
        assert await lock.refresh()
    assert not await BindingLock(redis_client, REF).acquire()
    assert await lock.release()
