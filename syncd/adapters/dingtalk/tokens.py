"""DingTalk app access tokens, cached in process memory and in Redis (shared by all workers).

A token is kept for its ``expireIn`` minus a safety margin (300 s, as the official Stream
SDK does; for very short lifetimes half the lifetime), so it is renewed *before* DingTalk
would reject it. A token the server rejected anyway (``InvalidAuthentication``) is passed
back as ``stale`` and replaced. Within a process, concurrent callers share one in-flight
refresh (an ``asyncio.Lock`` per app key); across processes a short shared lock lets one
worker fetch while the others wait for its result.

The shared layer is a :class:`SharedTokens` (in production
:class:`syncd.store.tokens.TokenStore`, which owns the Redis keys, the lock script and
the handling of Redis trouble: it logs and answers None, so the cache falls back to
memory only).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, int]]]
"""Fetches a fresh token: returns ``(access_token, expire_in_seconds)``."""


class SharedTokens(Protocol):
    """Tokens and refresh locks shared between processes; every call is best effort."""

    async def read(self, app: str) -> tuple[str, int] | None:
        """``(token, ttl in ms)``, or None when none is cached (or the store failed)."""

    async def write(self, app: str, token: str, ttl_ms: int) -> None:
        """Cache ``token`` for ``ttl_ms``."""

    async def acquire(self, app: str, owner: str, ttl_ms: int) -> bool | None:
        """Take the refresh lock: True, False (held by another), None (store failed)."""

    async def release(self, app: str, owner: str) -> None:
        """Release the refresh lock if ``owner`` holds it."""


class TokenCache:
    """Access tokens per app key: memory in front of an optional shared store."""

    def __init__(
        self,
        shared: SharedTokens | None = None,
        *,
        margin: float = 300.0,
        lock_timeout: float = 10.0,
        poll_interval: float = 0.05,
    ) -> None:
        self._shared = shared
        self._margin = margin
        self._lock_timeout = lock_timeout
        self._poll = poll_interval
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
                token = await self._from_shared(app_key, stale)
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

    async def _from_shared(self, app_key: str, stale: str | None) -> str | None:
        if self._shared is None:
            return None
        found = await self._shared.read(app_key)
        if not found or found[0] == stale:
            return None
        token, ttl_ms = found
        self._remember(app_key, token, ttl_ms / 1000 if ttl_ms > 0 else self._poll)
        return token

    async def _refresh(self, app_key: str, fetch: Fetch, stale: str | None) -> str:
        owner = uuid.uuid4().hex
        if self._shared is not None and not await self._acquire(app_key, owner):
            token = await self._wait_for_other(app_key, stale)
            if token is not None:
                return token
        try:
            return await self._fetch_and_store(app_key, fetch)
        finally:
            if self._shared is not None:
                await self._shared.release(app_key, owner)

    async def _acquire(self, app_key: str, owner: str) -> bool:
        assert self._shared is not None
        taken = await self._shared.acquire(app_key, owner, int(self._lock_timeout * 1000))
        # The store failing (None) also means "go ahead and fetch".
        return taken is None or taken

    async def _wait_for_other(self, app_key: str, stale: str | None) -> str | None:
        deadline = time.monotonic() + self._lock_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(self._poll)
            token = await self._from_shared(app_key, stale)
            if token is not None:
                return token
        log.warning("dingtalk_token_lock_wait_timeout", app_key=app_key)
        return None

    async def _fetch_and_store(self, app_key: str, fetch: Fetch) -> str:
        token, expire_in = await fetch()
        self.fetches += 1
        seconds = self.cache_seconds(expire_in)
        self._remember(app_key, token, seconds)
        if self._shared is not None and seconds > 0:
            await self._shared.write(app_key, token, int(seconds * 1000))
        log.info("dingtalk_token_fetched", app_key=app_key, expire_in=expire_in, cached_s=seconds)
        return token
