"""DingTalk app access tokens, cached in process memory and in Redis (shared by all workers).

A token is kept for its ``expireIn`` minus a safety margin (300 s, as the official Stream
SDK does; for very short lifetimes half the lifetime), so it is renewed *before* DingTalk
would reject it. A token the server rejected anyway (``InvalidAuthentication``) is passed
back as ``stale`` and replaced. Within a process, concurrent callers share one in-flight
refresh (an ``asyncio.Lock`` per app key); across processes a short Redis lock
(``SET NX PX``) lets one worker fetch while the others wait for its result. Redis trouble
never stops token handling: it is logged and the cache falls back to memory only.

Redis keys: ``syncd:token:{app_key}`` (the token, with a TTL) and ``…:lock``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

T = TypeVar("T")

Fetch = Callable[[], Awaitable[tuple[str, int]]]
"""Fetches a fresh token: returns ``(access_token, expire_in_seconds)``."""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TokenCache:
    """Access tokens per app key: memory in front of an optional shared Redis."""

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        margin: float = 300.0,
        lock_timeout: float = 10.0,
        poll_interval: float = 0.05,
        key_prefix: str = "syncd:token:",
    ) -> None:
        self._redis = redis
        self._margin = margin
        self._lock_timeout = lock_timeout
        self._poll = poll_interval
        self._prefix = key_prefix
        self._memory: dict[str, tuple[str, float]] = {}  # app_key -> (token, monotonic expiry)
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # tokens fetched from DingTalk by this instance

    async def get(self, app_key: str, fetch: Fetch, *, stale: str | None = None) -> str:
        """A usable token for ``app_key``; ``stale`` is one the server just rejected."""
        token = self._from_memory(app_key, stale)
        if token is not None:
            return token
        lock = self._locks.setdefault(app_key, asyncio.Lock())
        async with lock:
            token = self._from_memory(app_key, stale)
            if token is None:
                token = await self._from_redis(app_key, stale)
            if token is None:
                token = await self._refresh(app_key, fetch, stale)
            return token

    def cache_seconds(self, expire_in: float) -> float:
        """How long a token with lifetime ``expire_in`` is kept (0: not at all)."""
        if expire_in > 2 * self._margin:
            return expire_in - self._margin
        return max(expire_in / 2, 0.0)

    # --- layers ------------------------------------------------------------------------

    def _from_memory(self, app_key: str, stale: str | None) -> str | None:
        hit = self._memory.get(app_key)
        if hit is None or hit[0] == stale or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def _remember(self, app_key: str, token: str, seconds: float) -> None:
        if seconds > 0:
            self._memory[app_key] = (token, time.monotonic() + seconds)
        else:
            self._memory.pop(app_key, None)

    async def _from_redis(self, app_key: str, stale: str | None) -> str | None:
        if self._redis is None:
            return None
        key = self._prefix + app_key
        found = await self._safe(self._read(key), app_key)
        if not found or found[0] == stale:
            return None
        token, ttl_ms = found
        self._remember(app_key, token, ttl_ms / 1000 if ttl_ms > 0 else self._poll)
        return token

    async def _read(self, key: str) -> tuple[str, int] | None:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, ttl_ms = await pipe.execute()
        if raw is None:
            return None
        token = raw.decode() if isinstance(raw, bytes) else str(raw)
        return token, int(ttl_ms)

    async def _refresh(self, app_key: str, fetch: Fetch, stale: str | None) -> str:
        lock_key = f"{self._prefix}{app_key}:lock"
        owner = uuid.uuid4().hex
        if self._redis is not None and not await self._acquire(lock_key, owner, app_key):
            token = await self._wait_for_other(app_key, stale)
            if token is not None:
                return token
        try:
            return await self._fetch_and_store(app_key, fetch)
        finally:
            if self._redis is not None:
                await self._safe(self._release(lock_key, owner), app_key)

    async def _release(self, lock_key: str, owner: str) -> None:
        assert self._redis is not None
        await cast(Awaitable[Any], self._redis.eval(_RELEASE, 1, lock_key, owner))

    async def _acquire(self, lock_key: str, owner: str, app_key: str) -> bool:
        result = await self._safe(self._set_lock(lock_key, owner), app_key)
        # Redis unreachable (None from _safe) also means "go ahead and fetch".
        return result is None or result

    async def _set_lock(self, lock_key: str, owner: str) -> bool:
        assert self._redis is not None
        ms = int(self._lock_timeout * 1000)
        return bool(await self._redis.set(lock_key, owner, nx=True, px=ms))

    async def _wait_for_other(self, app_key: str, stale: str | None) -> str | None:
        deadline = time.monotonic() + self._lock_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(self._poll)
            token = await self._from_redis(app_key, stale)
            if token is not None:
                return token
        log.warning("dingtalk.token.lock_wait_timeout", app_key=app_key)
        return None

    async def _fetch_and_store(self, app_key: str, fetch: Fetch) -> str:
        token, expire_in = await fetch()
        self.fetches += 1
        seconds = self.cache_seconds(expire_in)
        self._remember(app_key, token, seconds)
        if self._redis is not None and seconds > 0:
            key = self._prefix + app_key
            await self._safe(self._redis.set(key, token, px=max(int(seconds * 1000), 1)), app_key)
        log.info("dingtalk.token.fetched", app_key=app_key, expire_in=expire_in, cached_s=seconds)
        return token

    async def _safe(self, call: Awaitable[T], app_key: str) -> T | None:
        """Run one Redis call; on failure log it and return None (memory-only fallback)."""
        try:
            return await call
        except (RedisError, OSError) as exc:
            log.warning("dingtalk.token.redis_unavailable", app_key=app_key, error=str(exc))
            return None
