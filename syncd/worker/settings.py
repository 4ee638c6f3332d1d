"""arq ``WorkerSettings`` built from configuration, and the worker's shared resources.

Besides the reconcile function, a long-running worker runs three crons: the poll (CalDAV
bindings every ``poll_interval``, adapted to recent changes by ``poll_cadence``, ICS feeds
every ``ics.refresh``; see :mod:`syncd.worker.schedule`),
the daily full reconcile, and :func:`revive_orphans`, which queues a run for any binding whose
running worker died (see :mod:`syncd.queue`) so that it is served again within the lock
ttl plus :data:`REVIVE_TICK_SECONDS`. Jobs hold the lock under the configured
``lock_ttl`` (:attr:`syncd.worker.context.WorkerContext.lock_ttl_s`).

arq (0.26-0.28) alone would not do that: it marks a started job with an in-progress key
that lives the longest function timeout plus 10 s (here ``job_timeout`` 600 s: 610 s)
and is never refreshed, keeps the job in its queue meanwhile, and runs it again (as its
next try) only once that key expired. A job cancelled by a shutdown is different: arq
deletes its key and re-queues it at once.
"""

from __future__ import annotations

import time
from typing import Any

from arq import cron
from arq.worker import Worker

from syncd import queue
from syncd.config import Config
from syncd.model import BindingRef
from syncd.worker import directory, push, tasks
from syncd.worker.context import CTX_KEY, WorkerContext, worker_context

# How often the poll cron takes the bindings due (syncd.worker.schedule): every second,
# as a binding that just changed is polled every few seconds; a tick is one script over the
# due bindings only (a sorted set), so it costs the same with 10 or 10,000 bindings.
POLL_TICK_SECONDS = 1
# How often the directory cron looks for tenants whose directory import is due.
DIRECTORY_TICK_SECONDS = 5
# How often the revive cron looks for bindings orphaned by a dead worker.
REVIVE_TICK_SECONDS = 2
# How often it also looks at every binding, not only at the runs in flight and jobs queued:
# a running record of an older version is not in the set of runs in flight (keys.RUNNING_SET).
REVIVE_SWEEP_SECONDS = 300


async def startup(ctx: dict[str, Any], config: Config) -> None:
    """Open what every job shares (:class:`WorkerContext`) on arq's Redis pool."""
    ctx[CTX_KEY] = WorkerContext.open(config, ctx["redis"])


def served_refs(config: Config) -> list[BindingRef]:
    """Every binding that reconcile jobs serve (CalDAV and ICS feed bindings alike)."""
    return [BindingRef(t.id, b.id) for t, b in config.bindings()]


async def revive_orphans(ctx: dict[str, Any]) -> int:
    """Cron: queue a run for every binding a dead worker left with a request taken.

    A tick looks only at the runs in flight and the jobs queued, so it costs the same with
    10 or 10,000 idle bindings; the first tick and one every :data:`REVIVE_SWEEP_SECONDS`
    look at every binding (records left by a version without the set of runs in flight).
    """
    shared = worker_context(ctx)
    sweep = shared.revive_sweep.due(time.monotonic(), REVIVE_SWEEP_SECONDS)
    return await queue.revive_orphans(shared.redis, served_refs(shared.config), sweep=sweep)


async def keep_push_subscriptions(ctx: dict[str, Any]) -> int:
    """Cron (with ``webdav_push``): register or renew the WebDAV-Push subscriptions due."""
    shared = worker_context(ctx)
    return await push.keep_due(shared.redis, shared.push_keeper, shared.config)


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what :func:`startup` opened."""
    shared = ctx.get(CTX_KEY)
    if isinstance(shared, WorkerContext):
        await shared.close()


def worker_settings(config: Config, *, burst: bool = False, poll: bool = True) -> dict[str, Any]:
    """Keyword arguments for :class:`arq.worker.Worker` (also usable as WorkerSettings)."""
    at = config.settings.full_reconcile_at
    crons = [
        cron(
            tasks.full_reconcile_all,
            hour={at.hour},
            minute={at.minute},
            second={0},
            run_at_startup=False,
            unique=True,
        )
    ]
    if poll:
        every = set(range(0, 60, POLL_TICK_SECONDS))
        crons.append(cron(tasks.poll_due, second=every, unique=True))
    if not burst:  # a burst worker only drains the queue; long-running ones revive
        every = set(range(0, 60, REVIVE_TICK_SECONDS))
        crons.append(cron(revive_orphans, second=every, unique=True))

    if not burst:  # it does nothing while webdav_push is not configured (a reload may add it)
        every = set(range(0, 60, push.TICK_SECONDS))
        crons.append(cron(keep_push_subscriptions, second=every, unique=True))

    if directory.importing(config):  # bindings of templates follow the DingTalk directory
        every = set(range(0, 60, DIRECTORY_TICK_SECONDS))
        crons.append(cron(directory.refresh_directories, second=every, unique=True))

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx, config)
        if directory.importing(config):
            await directory.refresh_directories(ctx)

    return {
        "functions": [queue.reconcile_function(tasks.reconcile_binding)],
        "cron_jobs": crons,
        "redis_settings": queue.redis_settings(config.settings.redis_url),
        "on_startup": on_startup,
        "on_shutdown": shutdown,
        "burst": burst,
        "max_tries": tasks.MAX_TRIES,
        "handle_signals": False,
        "job_timeout": 600,
        "max_jobs": 10,
        # arq checks the queue every poll_delay seconds when idle (default 0.5 s, which was
        # most of the callback-to-CalDAV latency); 0.1 s costs ~10 cheap Redis calls a second.
        "poll_delay": 0.1,
    }


def create_worker(
    config: Config, *, burst: bool = False, poll: bool = True, **overrides: Any
) -> Worker:
    """An arq worker for ``config`` (callers run ``await worker.async_run()`` or ``main()``)."""
    return Worker(**{**worker_settings(config, burst=burst, poll=poll), **overrides})
