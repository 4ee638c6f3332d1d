"""The one place where redis-py exceptions become :mod:`syncd.errors`.

Every module that talks to Redis (the stores, the lock, the queue) wraps its calls in
:func:`redis_errors`; nothing above them ever sees a redis-py exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from syncd.errors import StoreError, StoreUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")


@contextmanager
def redis_errors(operation: str) -> Iterator[None]:
    """Turn redis-py errors raised inside the block into ``StoreUnavailable``/``StoreError``.

    Connection trouble and timeouts (Redis down, restarting, loading) become the
    retryable :class:`~syncd.errors.StoreUnavailable`; any other Redis error (a script
    error, a wrong key type) becomes :class:`~syncd.errors.StoreError`.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("redis_unavailable", operation=operation, error=str(exc))
        raise StoreUnavailable(f"redis unavailable during {operation}: {exc}") from exc
    except RedisError as exc:
        log.error("redis_failed", operation=operation, error=str(exc))
        raise StoreError(f"redis failed during {operation}: {exc}") from exc


async def awaited(value: Awaitable[T] | T) -> T:
    """Await a redis-py command result (typed ``Awaitable[T] | T``, always awaitable on asyncio)."""
    return await cast(Awaitable[T], value)
