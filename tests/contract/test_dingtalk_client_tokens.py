"""TokenCache against a real redis-server: sharing, expiry, single-flight refresh, fallback."""

from __future__ import annotations

import asyncio
import itertools

import redis.asyncio as aredis

from syncd.adapters.dingtalk.tokens import TokenCache
from syncd_lab.stack.ports import free_port


class Issuer:
    """A token source that hands out t1, t2, ... and counts how often it was asked."""

    def __init__(self, expire_in: int = 7200, delay: float = 0.0) -> None:
        self.calls = 0
        self.expire_in = expire_in
        self.delay = delay
        self._seq = itertools.count(1)

    async def __call__(self) -> tuple[str, int]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return f"t{next(self._seq)}", self.expire_in


async def test_token_is_fetched_once_and_shared_through_redis(redis_client: aredis.Redis) -> None:
    """Two caches (two workers) on one Redis fetch a token once, stored with TTL expireIn-300."""
    issuer = Issuer()
    a, b = TokenCache(redis_client), TokenCache(redis_client)
    assert await a.get("app", issuer) == "t1"
    assert await b.get("app", issuer) == "t1"
    assert await a.get("app", issuer) == "t1"
    assert issuer.calls == 1
    ttl = await redis_client.ttl("syncd:token:app")
    assert 6890 <= ttl <= 6900


async def test_concurrent_callers_share_one_refresh(redis_client: aredis.Redis) -> None:
    """Fifty concurrent callers in one process cause a single fetch."""
    issuer = Issuer(delay=0.05)
    cache = TokenCache(redis_client)
    tokens = await asyncio.gather(*(cache.get("app", issuer) for _ in range(50)))
    assert set(tokens) == {"t1"}
    assert issuer.calls == 1


async def test_two_processes_refreshing_at_once_fetch_once(redis_client: aredis.Redis) -> None:
    """The Redis lock makes a second cache wait for the first one's token instead of fetching."""
    issuer = Issuer(delay=0.2)
    a, b = TokenCache(redis_client), TokenCache(redis_client)
    tokens = await asyncio.gather(a.get("app", issuer), b.get("app", issuer))
    assert tokens == ["t1", "t1"]
    assert issuer.calls == 1


async def test_stale_token_is_replaced_everywhere(redis_client: aredis.Redis) -> None:
    """A token the server rejected is replaced once; other caches then pick up the new one."""
    issuer = Issuer()
    a, b = TokenCache(redis_client), TokenCache(redis_client)
    assert await a.get("app", issuer) == "t1"
    assert await b.get("app", issuer) == "t1"
    assert await a.get("app", issuer, stale="t1") == "t2"
    assert await b.get("app", issuer, stale="t1") == "t2"
    assert issuer.calls == 2


async def test_short_lived_tokens_expire_before_the_server_rejects_them(
    redis_client: aredis.Redis,
) -> None:
    """A 1-second token is cached for half its life, then fetched again."""
    issuer = Issuer(expire_in=1)
    cache = TokenCache(redis_client)
    assert await cache.get("app", issuer) == "t1"
    await asyncio.sleep(0.6)
    assert await cache.get("app", issuer) == "t2"
    assert cache.cache_seconds(7200) == 6900
    assert cache.cache_seconds(1) == 0.5


async def test_unreachable_redis_falls_back_to_memory() -> None:
    """With Redis down the cache still works from memory and fetches only once."""
    dead = aredis.Redis(port=free_port(), socket_connect_timeout=0.2)
    try:
        issuer = Issuer()
        cache = TokenCache(dead)
        assert await cache.get("app", issuer) == "t1"
        assert await cache.get("app", issuer) == "t1"
        assert issuer.calls == 1
    finally:
        await dead.aclose()


async def test_memory_only_cache_without_redis() -> None:
    """TokenCache(None) keeps tokens per app key in memory."""
    issuer = Issuer()
    cache = TokenCache(None)
    assert [await cache.get(k, issuer) for k in ("a", "b", "a")] == ["t1", "t2", "t1"]
