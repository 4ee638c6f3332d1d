"""The shared side of the DingTalk token cache: one app's token and refresh lock in Redis.

Keys (:mod:`syncd.store.keys`): ``syncd:@dingtalk:<app key>:token`` holds the token with
its cache time as TTL, ``…:token_lock`` the owner of a refresh under way (``SET NX PX``,
released only by its owner). Redis trouble never stops token handling: every call logs
it and answers None, and the cache (:mod:`syncd.adapters.dingtalk.tokens`) goes on from
memory alone.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import structlog
from redis.asyncio import Redis

from syncd.errors import StoreError
from syncd.store import keys
from syncd.store.guard import redis_errors

log = structlog.get_logger(__name__)

T = TypeVar("T")

# KEYS: the lock.  ARGV: owner.  Delete the lock only if it is still the owner's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenStore:
    """Tokens and refresh locks of DingTalk apps in Redis; every method is best effort."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)

    async def read(self, app: str) -> tuple[str, int] | None:
        """``(token, ttl in ms)`` of ``app``'s cached token; None if none (or Redis fails)."""
        return await self._safe(self._read(keys.app_key(app, keys.TOKEN)), app, "token_read")

    async def write(self, app: str, token: str, ttl_ms: int) -> None:
        """Cache ``token`` for ``ttl_ms`` (at least 1 ms)."""
        key = keys.app_key(app, keys.TOKEN)
        await self._safe(self._redis.set(key, token, px=max(ttl_ms, 1)), app, "token_write")

    async def acquire(self, app: str, owner: str, ttl_ms: int) -> bool | None:
        """Take ``app``'s refresh lock for ``owner``: True, False (taken), None (Redis failed)."""
        return await self._safe(self._lock(app, owner, ttl_ms), app, "token_lock")

    async def release(self, app: str, owner: str) -> None:
        """Release ``app``'s refresh lock if ``owner`` still holds it."""
        call = self._release(keys=[keys.app_key(app, keys.TOKEN_LOCK)], args=[owner])
        await self._safe(cast(Awaitable[Any], call), app, "token_unlock")

    async def _lock(self, app: str, owner: str, ttl_ms: int) -> bool:
        key = keys.app_key(app, keys.TOKEN_LOCK)
        return bool(await self._redis.set(key, owner, nx=True, px=ttl_ms))

    async def _read(self, key: str) -> tuple[str, int] | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, ttl_ms = await pipe.execute()
        if raw is None:
            return None
        token = raw.decode() if isinstance(raw, bytes) else str(raw)
        return token, int(ttl_ms)

    async def _safe(self, call: Awaitable[T], app: str, operation: str) -> T | None:
        """Run one Redis call; on failure log it and return None (memory-only fallback)."""
        try:
            with redis_errors(operation):
                return await call
        except StoreError as exc:
            log.warning("dingtalk_token_redis_unavailable", app_key=app, error=str(exc))
            return None
