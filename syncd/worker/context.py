"""What every job of a worker shares, as one typed record in arq's ``ctx``.

arq hands each task its per-worker dict ``ctx`` (with arq's own ``redis`` pool and, per
job, ``job_id`` and ``job_try``). syncd keeps its shared resources there under one key,
:data:`CTX_KEY`, as a :class:`WorkerContext`: built in one place (:meth:`WorkerContext.open`)
by the worker's start-up and by the operator commands' foreground runs, closed by
:meth:`WorkerContext.close`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import aiohttp
from arq.connections import ArqRedis

from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config
from syncd.config.templates import expand_config
from syncd.model import OrgDirectory
from syncd.store.ratelimit import RequestPace
from syncd.store.redis import RedisStore
from syncd.store.tokens import TokenStore
from syncd.worker.push import PushKeeper
from syncd.worker.schedule import PollScheduler

CTX_KEY = "syncd"
"""The key of the :class:`WorkerContext` in arq's ``ctx``."""

HTTP_TIMEOUT_S = 60
"""Total time one HTTP request of a job (DingTalk, CalDAV) may take."""


@dataclass
class SweepClock:
    """When a periodic full sweep last ran (``time.monotonic``; None: never)."""

    last: float | None = None

    def due(self, now: float, every_s: float) -> bool:
        """Whether a sweep is due at ``now``; if so, it counts as done at ``now``."""
        if self.last is not None and now - self.last < every_s:
            return False
        self.last = now
        return True


@dataclass(frozen=True)
class WorkerContext:
    """A worker's shared resources: one HTTP session, the token cache, the store, the pace."""

    config: Config
    redis: ArqRedis
    session: aiohttp.ClientSession
    tokens: TokenCache
    store: RedisStore
    pace: RequestPace
    lock_ttl_s: float
    """The lease of a binding's reconcile lock (``lock_ttl`` at start-up; a reload keeps it)."""
    base_config: Config | None = None
    """The configuration as loaded (templates unexpanded); ``config`` is what it serves:
    ``base_config`` with its binding templates expanded over :attr:`directories`."""
    directories: Mapping[str, OrgDirectory | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Each importing tenant's last good directory (:mod:`syncd.worker.directory`)."""
    scheduler: PollScheduler = field(default_factory=PollScheduler)
    """What the poll schedule was last synced to (:mod:`syncd.worker.schedule`); a reload
    keeps the object, and its next poll tick syncs the schedule to the new configuration."""
    push_keeper: PushKeeper = field(default_factory=PushKeeper)
    """When each binding's WebDAV-Push subscription is looked at next
    (:mod:`syncd.worker.push`); a reload keeps the object (a new configuration resets it)."""
    revive_sweep: SweepClock = field(default_factory=SweepClock)
    """When the revive cron last looked at every binding, not only at those with a run in
    flight (:func:`syncd.worker.settings.revive_orphans`); a reload keeps the object."""

    @classmethod
    def open(cls, config: Config, redis: ArqRedis) -> WorkerContext:
        """The resources of a worker (or a foreground run) on ``redis``; close them after."""
        return cls(
            config=expand_config(config, {})[0],
            base_config=config,
            redis=redis,
            session=aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)),
            tokens=TokenCache(TokenStore(redis)),
            store=RedisStore(redis),
            pace=RequestPace(redis),
            lock_ttl_s=float(config.settings.lock_ttl),
        )

    async def close(self) -> None:
        """Close what :meth:`open` opened (the Redis pool is the caller's)."""
        await self.session.close()


def worker_context(ctx: dict[str, Any]) -> WorkerContext:
    """The :class:`WorkerContext` stored in arq's ``ctx``."""
    found = ctx[CTX_KEY]
    assert isinstance(found, WorkerContext)
    return found


def swap_config(ctx: dict[str, Any], config: Config) -> None:
    """A reload: jobs and crons started from now on see ``config`` (running ones keep theirs),
    its templates expanded over the directories last imported."""
    shared = ctx.get(CTX_KEY)
    if isinstance(shared, WorkerContext):
        served = expand_config(config, shared.directories)[0]
        ctx[CTX_KEY] = replace(shared, config=served, base_config=config)


def swap_directories(
    ctx: dict[str, Any], found: Mapping[str, OrgDirectory | None], served: Config
) -> None:
    """A directory refresh: ``served`` (the base config expanded over ``found``) from now on."""
    shared = worker_context(ctx)
    ctx[CTX_KEY] = replace(shared, config=served, directories=MappingProxyType(dict(found)))
