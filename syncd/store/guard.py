"""The one place where redis-py exceptions become :mod:`syncd.errors`, and the run's lease.

Every module that talks to Redis (the stores, the lock, the queue) wraps its calls in
:func:`redis_errors`; nothing above them ever sees a redis-py exception. The same wrapper
keeps :data:`REACHABILITY`, the process's view of whether Redis answers, so that an
outage is logged once when it starts (``redis_lost``) and once when it ends
(``redis_back``), however many operations fail in between.

**Fencing.** A reconcile run holds its binding's lock (:mod:`syncd.store.lock`); while it
does, :func:`leased` makes its :class:`Lease` the *current lease* of every task the run
starts (a context variable, so no function signature changes). The Redis mapping store
asks :func:`fence_token` for it and turns every write to that binding into a Lua script
that first checks the lock still holds the lease's token (:func:`fenced`): a run
whose lock expired gets :class:`~syncd.errors.LockLost` instead of a write. The lock and
the data live in the same Redis, so the check and the write are one atomic step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar, cast

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from syncd.errors import LockLost, StoreError, StoreUnavailable
from syncd.model import BindingRef
from syncd.store.reasons import plain_reason

log = structlog.get_logger(__name__)

T = TypeVar("T")

LOCK_LOST_REPLY = "LOCKLOST"

_FENCE_CHECK = f"""
local fence = ARGV[#ARGV]
if fence ~= '' and redis.call('GET', KEYS[#KEYS]) ~= fence then
  return redis.error_reply('{LOCK_LOST_REPLY} the binding lock is not held by this run')
end
"""


def fenced(script: str) -> str:
    """The Lua ``script`` behind the fence check: the lock key must be its last KEYS entry
    and the lease token (:func:`fence_token`; "" = unfenced) its last ARGV entry."""
    return _FENCE_CHECK + script


class Reachability:
    """Whether Redis answered the last operation; logs only when that changes.

    ``target`` says which Redis and where its URL came from (the CLI sets it, e.g.
    ``redis://host:6379/0 (from SYNCD_REDIS_URL)``), for the log line and error messages.
    """

    def __init__(self) -> None:
        self.up = True
        self.lost_at: float | None = None
        self.target = ""

    def lost(self, error: str) -> None:
        """An operation could not reach Redis: log ``redis_lost`` if it was reachable."""
        if self.up:
            self.up, self.lost_at = False, time.monotonic()
            where = {"redis": self.target} if self.target else {}
            log.warning("redis_lost", error=error, **where)

    def back(self) -> None:
        """An operation succeeded: log ``redis_back`` (with the outage length) if it was lost."""
        if not self.up:
            down = time.monotonic() - (self.lost_at or time.monotonic())
            self.up, self.lost_at = True, None
            log.warning("redis_back", down_s=round(down, 1))


REACHABILITY = Reachability()
"""The process-wide view; ``syncd web``/``worker`` report its changes as log lines."""


@contextmanager
def redis_errors(operation: str) -> Iterator[None]:
    """Turn redis-py errors raised inside the block into ``syncd.errors``.

    Connection trouble and timeouts (Redis down, restarting, loading, failing over)
    become the retryable :class:`~syncd.errors.StoreUnavailable`; a fenced write refused
    because the run lost its lock becomes :class:`~syncd.errors.LockLost`; any other
    Redis error (a script error, a wrong key type) becomes :class:`~syncd.errors.StoreError`.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        reason = plain_reason(exc)
        REACHABILITY.lost(reason)
        log.debug("redis_unavailable", operation=operation, error=str(exc))
        at = f" at {REACHABILITY.target}" if REACHABILITY.target else ""
        raise StoreUnavailable(f"redis unavailable during {operation}{at}: {reason}") from exc
    except ResponseError as exc:
        REACHABILITY.back()
        if str(exc).startswith(LOCK_LOST_REPLY):
            log.warning("store_write_fenced", operation=operation)
            raise LockLost(f"{operation} refused: the binding lock is no longer ours") from exc
        log.error("redis_failed", operation=operation, error=str(exc))
        raise StoreError(f"redis failed during {operation}: {exc}") from exc
    except RedisError as exc:
        log.error("redis_failed", operation=operation, error=str(exc))
        raise StoreError(f"redis failed during {operation}: {exc}") from exc
    REACHABILITY.back()


async def awaited(value: Awaitable[T] | T) -> T:
    """Await a redis-py command result (typed ``Awaitable[T] | T``, always awaitable on asyncio)."""
    return await cast(Awaitable[T], value)


# --- the run's lease ------------------------------------------------------------------------


@dataclass(eq=False)
class Lease:
    """A run's hold on its binding lock, as this process knows it.

    ``deadline`` is the monotonic time until which the lock is surely still ours: the
    moment the last successful acquire/refresh was *sent*, plus the ttl (Redis started
    its clock later than that). Past it, or once :meth:`revoke` was called, the run
    must not write anything anywhere: :meth:`check` cancels it.
    """

    ref: BindingRef
    token: str
    ttl_s: float
    confirmed_at: float
    revoked: bool = False
    ended: bool = False
    on_revoke: Callable[[], object] | None = field(default=None, repr=False)

    @property
    def deadline(self) -> float:
        return self.confirmed_at + self.ttl_s

    def confirm(self, sent_at: float) -> None:
        """A refresh sent at monotonic ``sent_at`` succeeded: the lock is ours for a ttl."""
        self.confirmed_at = max(self.confirmed_at, sent_at)

    def valid(self) -> bool:
        """Not revoked and not past the deadline."""
        return not self.revoked and time.monotonic() < self.deadline

    def revoke(self, why: str) -> None:
        """Stop the run: mark the lease dead and call ``on_revoke`` (once; never after
        :meth:`end`)."""
        if self.revoked or self.ended:
            return
        self.revoked = True
        log.error("lock_lost", why=why)
        if self.on_revoke is not None:
            self.on_revoke()

    def end(self) -> None:
        """The run is over: nothing it left behind (a late timer) may revoke it now."""
        self.ended = True

    def check(self) -> None:
        """Raise ``CancelledError`` (after revoking) unless the lease is still valid.

        Called before every write to a side: a run that woke up after its lock expired
        (SIGSTOP, GC pause, event-loop stall) stops here before sending anything.
        """
        if self.valid():
            return
        self.revoke("deadline passed" if not self.revoked else "revoked")
        raise asyncio.CancelledError()


_LEASE: ContextVar[Lease | None] = ContextVar("syncd_lease", default=None)


@contextmanager
def leased(lease: Lease) -> Iterator[None]:
    """Make ``lease`` the current lease of tasks created inside the block."""
    reset = _LEASE.set(lease)
    try:
        yield
    finally:
        _LEASE.reset(reset)


def current_lease() -> Lease | None:
    """The lease of the run this code is part of, if any."""
    return _LEASE.get()


def fence_token(ref: BindingRef) -> str:
    """The token a write to ``ref`` must be fenced with: the current lease's, or "" (none)."""
    lease = _LEASE.get()
    return lease.token if lease is not None and lease.ref == ref else ""
