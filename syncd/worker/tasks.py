"""arq task functions: thin, each takes the worker's shared resources and calls the reconciler.

``ctx`` is arq's per-worker dict; syncd's part of it is one
:class:`~syncd.worker.context.WorkerContext` (config, Redis, HTTP session, token cache,
store, DingTalk request pace), stored there by :func:`syncd.worker.settings.startup`.
arq adds ``job_try`` per job.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from arq import Retry

from syncd import queue
from syncd.config import Binding, Config
from syncd.errors import CalendarMissing, Retryable, SourceUnavailable, SyncdError
from syncd.model import BindingRef
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
) -> Report:
    """One reconcile of ``ref`` with the worker's shared resources (no locking)."""
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
    if report.retryable:
        # Some writes failed transiently: cursors stayed put; run again after a backoff.
        await queue.mark_dirty(shared.redis, ref)
        failed = sum(e.retryable for e in report.errors)
        transient = SourceUnavailable(f"{failed} action(s) failed transiently")
        return await _retry_or_dead_letter(shared, ref, reason, transient, tries)
    return report.summary_line()


def _configured(config: Config, ref: BindingRef) -> bool:
    tenant = config.tenants.get(ref.tenant)
    return tenant is not None and any(b.id == ref.binding for b in tenant.bindings)


async def _locked_run(ctx: WorkerContext, ref: BindingRef) -> Report:
    """Under the lock: a full run if one was asked for (the mark survives failures)."""
    full = await queue.take_full(ctx.redis, ref)
    try:
        return await run_once(ctx, ref, full=full)
    except BaseException:
        if full:
            await queue.mark_full(ctx.redis, ref)
        raise


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


async def poll_due(ctx: dict[str, Any]) -> int:
    """Cron: request a reconcile of every binding whose poll interval (CalDAV) or refresh
    (ICS feed) has passed, up to the room :data:`POLL_ROOM` leaves in the queue.

    A binding left out stays due (its poll period is only taken when it is requested) and
    is requested at a later tick.
    """
    shared, requested = worker_context(ctx), 0
    room = max(1, POLL_ROOM - await queue.ready_reconciles(shared.redis))
    for tenant, binding in shared.config.bindings():
        if requested >= room:
            break
        ref = BindingRef(tenant.id, binding.id)
        if await queue.poll_due(shared.redis, ref, poll_every(binding)):
            await queue.request_reconcile(
                shared.redis, ref, "poll" if binding.caldav else "refresh"
            )
            requested += 1
    return requested


def poll_every(binding: Binding) -> float:
    """Seconds between two polls of ``binding``: ``poll_interval``, or ``ics.refresh``."""
    return binding.ics.refresh if binding.ics is not None else binding.poll_interval


async def full_reconcile_all(ctx: dict[str, Any]) -> int:
    """Cron (daily): a full reconcile of every binding, the safety net for missed changes."""
    shared, count = worker_context(ctx), 0
    for tenant, binding in shared.config.bindings():
        ref = BindingRef(tenant.id, binding.id)
        await queue.request_reconcile(shared.redis, ref, "full", full=True)
        count += 1
    return count
