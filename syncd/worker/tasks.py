"""arq task functions: thin, each takes the worker's shared resources and calls the reconciler.

``ctx`` is arq's per-worker dict; syncd's part of it is one
:class:`~syncd.worker.context.WorkerContext` (config, Redis, HTTP session, token cache,
store, DingTalk request pace), stored there by :func:`syncd.worker.settings.startup`.
arq adds ``job_try`` per job.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from arq import Retry

from syncd import queue
from syncd.config import Config
from syncd.errors import CalendarMissing, Retryable, SourceUnavailable, SyncdError
from syncd.model import BindingRef, Side
from syncd.observability import (
    ACTIONS,
    CONFLICTS,
    FILTERED,
    ITEM_ERRORS,
    RECONCILE_SECONDS,
    RECONCILES,
    bound_to_binding,
)
from syncd.reconcile import Progress, Report, WithoutForeign, owned_elsewhere, reconcile
from syncd.sync import Delete, Skip
from syncd.sync.records import DeadLetter
from syncd.worker import schedule
from syncd.worker.context import WorkerContext, worker_context
from syncd.worker.wiring import siblings, wire

log = structlog.get_logger(__name__)

MAX_TRIES = 5


async def run_once(
    ctx: WorkerContext,
    ref: BindingRef,
    *,
    full: bool = False,
    dry_run: bool = False,
    force_delete: bool = False,
    on_progress: Progress | None = None,
    list_dingtalk: bool = True,
) -> Report:
    """One reconcile of ``ref`` with the worker's shared resources (no locking).

    ``list_dingtalk=False`` lists DingTalk only if the run must (see
    :func:`syncd.reconcile.reconcile`); the default (``syncd sync``) always lists it.
    """
    foreign = await owned_elsewhere(ctx.store, siblings(ctx.config, ref))
    async with wire(
        ctx.config,
        ref,
        ctx.session,
        ctx.tokens,
        force_delete=force_delete,
        pace=ctx.pace,
        store=ctx.store,
    ) as w:
        return await reconcile(
            ref,
            WithoutForeign(queue.FencedSide(w.dingtalk), foreign),
            queue.FencedSide(w.other),
            ctx.store,
            w.policy,
            full=full,
            dry_run=dry_run,
            on_progress=on_progress,
            list_dingtalk=list_dingtalk,
            concurrency=w.concurrency,
        )


async def reconcile_binding(ctx: dict[str, Any], tenant: str, binding: str, reason: str) -> str:
    """The reconcile job of one binding, run under :func:`syncd.queue.run_exclusive`.

    Every line it logs names the tenant, the binding and the arq job id.
    """
    ref = BindingRef(tenant, binding)
    with bound_to_binding(ref, job_id=ctx.get("job_id")):
        return await _reconcile_job(worker_context(ctx), ref, reason, int(ctx.get("job_try") or 1))


async def _reconcile_job(shared: WorkerContext, ref: BindingRef, reason: str, tries: int) -> str:
    tenant = ref.tenant
    if not _configured(shared.config, ref):  # removed by a config reload since it was queued
        log.info("reconcile_skipped", why="not configured")
        return "skipped: not configured"
    started = time.monotonic()
    try:
        outcome = await queue.run_exclusive(
            shared.redis, ref, lambda: _locked_run(shared, ref), lock_ttl_s=shared.lock_ttl_s
        )
    except Retryable as exc:
        return await _retry_or_dead_letter(shared, ref, reason, exc, tries)
    except CalendarMissing as exc:
        # Not a dead letter: the status says why, and the next poll heals it by itself.
        RECONCILES.labels(tenant, "failed").inc()
        return f"failed: {exc}"
    except SyncdError as exc:
        await _dead_letter(shared, ref, reason, exc, tries)
        RECONCILES.labels(tenant, "failed").inc()
        return f"failed: {type(exc).__name__}: {exc}"
    if outcome.result is None:
        RECONCILES.labels(tenant, outcome.skipped or "skipped").inc()
        return f"skipped: {outcome.skipped}"
    report = outcome.result
    _record(ref, report, time.monotonic() - started)
    await schedule.after_run(shared.redis, shared.config, ref, _changes(report), time.time())
    if report.retryable:
        # Some writes failed transiently: cursors stayed put; run again after a backoff.
        await queue.mark_dirty(shared.redis, ref)
        failed = sum(e.retryable for e in report.errors)
        transient = SourceUnavailable(f"{failed} action(s) failed transiently")
        return await _retry_or_dead_letter(shared, ref, reason, transient, tries)
    return report.summary_line()


def _changes(report: Report) -> int:
    """How many changes a finished (not dry) run carried: what makes its binding poll fast."""
    if report.dry_run:
        return 0
    c = report.counts
    return c.created + c.updated + c.deleted + c.conflicts


def _configured(config: Config, ref: BindingRef) -> bool:
    tenant = config.tenants.get(ref.tenant)
    return tenant is not None and any(b.id == ref.binding for b in tenant.bindings)


async def _locked_run(ctx: WorkerContext, ref: BindingRef) -> Report:
    """Under the lock: a full run if one was asked for (the mark survives failures); DingTalk
    listed only when a push, the tenant's ``list_every``, a failure or the other side's
    changes ask for it (the push mark survives failures: :func:`syncd.queue.end_run`)."""
    full = await queue.take_full(ctx.redis, ref)
    every = _list_every(ctx.config, ref)
    try:
        due = every == "always" or await queue.take_dingtalk(ctx.redis, ref)
        must_list = full or due
        report = await run_once(ctx, ref, full=full, list_dingtalk=must_list)
    except BaseException:
        if full:
            await queue.mark_full(ctx.redis, ref)
        raise
    written = report.per_side[Side.DINGTALK]
    if written.created or written.updated or written.deleted:
        await queue.mark_pushed(ctx.redis, _same_user(ctx.config, ref))
    if every != "always":
        await queue.dingtalk_listed(
            ctx.redis,
            ref,
            listed=report.dingtalk_listed,
            committed=report.cursors_committed,
            every_s=every,
        )
    return report


def _same_user(config: Config, ref: BindingRef) -> list[BindingRef]:
    """The other bindings of ``ref``'s DingTalk user: a write there changes what they read
    (DingTalk's push of our own write would tell them too, but it may be lost or late)."""
    tenant = config.tenants[ref.tenant]
    user = next(b.dingtalk_user for b in tenant.bindings if b.id == ref.binding)
    return [
        BindingRef(tenant.id, b.id)
        for b in tenant.bindings
        if b.id != ref.binding and b.dingtalk_user == user
    ]


def _list_every(config: Config, ref: BindingRef) -> float | Literal["always"]:
    """The tenant's ``dingtalk.list_every``; ``always`` for an ICS feed binding: pushes do
    not name it (a change in DingTalk never fetches a feed), yet each refresh must see a
    DingTalk edit of a feed's event to put it back, and a refresh is rare (``ics.refresh``)."""
    tenant = config.tenants[ref.tenant]
    if any(b.id == ref.binding and b.ics is not None for b in tenant.bindings):
        return "always"
    return tenant.dingtalk.list_every


def _record(ref: BindingRef, report: Report, seconds: float) -> None:
    """Metrics of a finished run (the runner itself logs the canonical line)."""
    RECONCILES.labels(ref.tenant, "ok" if report.ok else "partial").inc()
    RECONCILE_SECONDS.labels(ref.tenant).observe(seconds)
    for side, counts in report.per_side.items():
        for kind in ("created", "updated", "deleted"):
            if n := getattr(counts, kind):
                ACTIONS.labels(ref.tenant, str(side), kind).inc(n)
    if report.counts.conflicts:
        CONFLICTS.labels(ref.tenant).inc(report.counts.conflicts)
    for error in report.errors:
        ITEM_ERRORS.labels(ref.tenant, str(error.side or "-"), error.error).inc()
    _record_items(ref, report)


def _record_items(ref: BindingRef, report: Report) -> None:
    """Items left alone (an error unless the filter chose it) and copies the filter removed."""
    for action in report.plan.actions:
        if isinstance(action, Skip) and action.filtered:
            FILTERED.labels(ref.tenant, str(action.side or "-"), "skipped").inc()
        elif isinstance(action, Skip):
            ITEM_ERRORS.labels(ref.tenant, str(action.side or "-"), "skipped").inc()
        elif isinstance(action, Delete) and action.filtered:
            FILTERED.labels(ref.tenant, str(action.target.other), "removed").inc()


async def _retry_or_dead_letter(
    ctx: WorkerContext, ref: BindingRef, reason: str, exc: Retryable, tries: int
) -> str:
    if tries >= MAX_TRIES:
        await _dead_letter(ctx, ref, reason, exc, tries)
        RECONCILES.labels(ref.tenant, "failed").inc()
        return f"failed after {tries} tries: {exc}"
    RECONCILES.labels(ref.tenant, "retried").inc()
    delay = getattr(exc, "retry_after", None) or min(2**tries, 60)
    log.warning("reconcile_retry", error=str(exc), defer=delay, job_try=tries)
    raise Retry(defer=delay) from exc


async def _dead_letter(
    ctx: WorkerContext, ref: BindingRef, reason: str, exc: Exception, tries: int
) -> None:
    """Keep a binding-level dead letter (no ``uid``) of a run that failed for good.

    It stays until ``syncd replay`` or until a later run of the binding succeeds (the
    runner resolves it then); the status keeps the reason as ``last_error``.
    """
    letter = DeadLetter.of_binding(reason, exc, tries, datetime.now(UTC).isoformat())
    log.error("reconcile_failed", error=letter.error)
    await ctx.store.add_dead_letter(ref, letter)


POLL_ROOM = 4
"""The poll cron queues polls only while fewer reconcile jobs than this are ready or
running, and at most that many per tick (but always at least one): a push's job never
waits behind a queue of idle polls, since the worker runs ``max_jobs`` (10) at once."""


POLL_TICK_BUDGET_S = 0.8
"""How long one poll cron tick keeps admitting due polls as the queue drains."""
POLL_RECHECK_S = 0.05


async def poll_due(ctx: dict[str, Any]) -> int:
    """Cron: request a reconcile of every binding whose next poll (CalDAV) or refresh (ICS
    feed) is due, while fewer than :data:`POLL_ROOM` reconcile jobs are ready or running.

    The first look always admits one; then, for up to :data:`POLL_TICK_BUDGET_S`, the tick
    admits more as room frees up, so polls keep up with hundreds of due bindings a second
    while never queueing more than the room ahead of a push. The schedule
    (:mod:`syncd.worker.schedule`) hands each due binding to one worker only; one left out
    stays due and is requested later.
    """
    shared, requested = worker_context(ctx), 0
    deadline = time.monotonic() + POLL_TICK_BUDGET_S
    while True:
        room = POLL_ROOM - await queue.ready_reconciles(shared.redis)
        room = max(1, room) if not requested else room
        if room > 0:
            polls = await schedule.take_polls(
                shared.redis, shared.scheduler, shared.config, time.time(), room
            )
            for ref, binding in polls:
                reason = "poll" if binding.caldav else "refresh"
                await queue.request_reconcile(shared.redis, ref, reason)
            requested += len(polls)
            if len(polls) < room:  # nothing else is due
                return requested
        if time.monotonic() >= deadline:
            return requested
        await asyncio.sleep(POLL_RECHECK_S)


async def full_reconcile_all(ctx: dict[str, Any]) -> int:
    """Cron (daily): a full reconcile of every binding, the safety net for missed changes."""
    shared, count = worker_context(ctx), 0
    for tenant, binding in shared.config.bindings():
        ref = BindingRef(tenant.id, binding.id)
        await queue.request_reconcile(shared.redis, ref, "full", full=True)
        count += 1
    return count
