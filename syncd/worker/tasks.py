"""arq task functions: thin, each looks things up in ``ctx`` and calls the reconciler.

``ctx`` is arq's per-worker dict, filled by :func:`syncd.worker.settings.startup`:
``config``, ``session`` (aiohttp), ``tokens`` (shared token cache), ``store`` (Redis
mapping store) and arq's own ``redis`` pool. The DingTalk request pace (one token bucket
per app in that Redis, :mod:`syncd.store.ratelimit`) is added on first use.
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
    ITEM_ERRORS,
    RECONCILE_SECONDS,
    RECONCILES,
)
from syncd.reconcile import Progress, Report, WithoutForeign, owned_elsewhere, reconcile
from syncd.store.ratelimit import RequestPace
from syncd.sync import Skip
from syncd.worker.wiring import siblings, wire

log = structlog.get_logger(__name__)

MAX_TRIES = 5


async def run_once(
    ctx: dict[str, Any],
    ref: BindingRef,
    *,
    full: bool = False,
    dry_run: bool = False,
    force_delete: bool = False,
    on_progress: Progress | None = None,
) -> Report:
    """One reconcile of ``ref`` with the worker's shared resources (no locking)."""
    config, session, tokens = ctx["config"], ctx["session"], ctx["tokens"]
    foreign = await owned_elsewhere(ctx["store"], siblings(config, ref))
    pace = request_pace(ctx)
    async with wire(config, ref, session, tokens, force_delete=force_delete, pace=pace) as w:
        return await reconcile(
            ref,
            WithoutForeign(queue.FencedSide(w.dingtalk), foreign),
            queue.FencedSide(w.other),
            ctx["store"],
            w.policy,
            full=full,
            dry_run=dry_run,
            on_progress=on_progress,
        )


def request_pace(ctx: dict[str, Any]) -> RequestPace:
    """The process's DingTalk request pace (made once, on the ``ctx`` Redis)."""
    pace = ctx.get("pace")
    if not isinstance(pace, RequestPace):
        pace = ctx["pace"] = RequestPace(ctx["redis"])
    return pace


async def reconcile_binding(ctx: dict[str, Any], tenant: str, binding: str, reason: str) -> str:
    """The reconcile job of one binding, run under :func:`syncd.queue.run_exclusive`."""
    ref = BindingRef(tenant, binding)
    if not _configured(ctx["config"], ref):  # removed by a config reload since it was queued
        log.info("reconcile_skipped", binding=str(ref), why="not configured")
        return "skipped: not configured"
    started = time.monotonic()
    try:
        outcome = await queue.run_exclusive(
            ctx["redis"],
            ref,
            lambda: _locked_run(ctx, ref),
            lock_ttl_s=ctx.get("lock_ttl_s", queue.DEFAULT_LOCK_TTL_S),
        )
    except Retryable as exc:
        return await _retry_or_dead_letter(ctx, ref, reason, exc)
    except CalendarMissing as exc:
        # Not a dead letter: the status says why, and the next poll heals it by itself.
        RECONCILES.labels(tenant, "failed").inc()
        return f"failed: {exc}"
    except SyncdError as exc:
        await _dead_letter(ctx, ref, reason, exc)
        RECONCILES.labels(tenant, "failed").inc()
        return f"failed: {type(exc).__name__}: {exc}"
    if outcome.result is None:
        RECONCILES.labels(tenant, outcome.skipped or "skipped").inc()
        return f"skipped: {outcome.skipped}"
    report = outcome.result
    _record(ref, report, time.monotonic() - started)
    if report.retryable:
        # Some writes failed transiently: cursors stayed put; run again after a backoff.
        await queue.mark_dirty(ctx["redis"], ref)
        failed = sum(e.retryable for e in report.errors)
        transient = SourceUnavailable(f"{failed} action(s) failed transiently")
        return await _retry_or_dead_letter(ctx, ref, reason, transient)
    return report.summary_line()


def _configured(config: Config, ref: BindingRef) -> bool:
    tenant = config.tenants.get(ref.tenant)
    return tenant is not None and any(b.id == ref.binding for b in tenant.bindings)


async def _locked_run(ctx: dict[str, Any], ref: BindingRef) -> Report:
    """Under the lock: a full run if one was asked for (the mark survives failures)."""
    full = await queue.take_full(ctx["redis"], ref)
    try:
        return await run_once(ctx, ref, full=full)
    except BaseException:
        if full:
            await queue.mark_full(ctx["redis"], ref)
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
    for action in report.plan.actions:
        if isinstance(action, Skip):
            ITEM_ERRORS.labels(ref.tenant, str(action.side or "-"), "skipped").inc()


async def _retry_or_dead_letter(
    ctx: dict[str, Any], ref: BindingRef, reason: str, exc: Retryable
) -> str:
    tries = int(ctx.get("job_try") or 1)
    if tries >= MAX_TRIES:
        await _dead_letter(ctx, ref, reason, exc)
        RECONCILES.labels(ref.tenant, "failed").inc()
        return f"failed after {tries} tries: {exc}"
    RECONCILES.labels(ref.tenant, "retried").inc()
    delay = getattr(exc, "retry_after", None) or min(2**tries, 60)
    log.warning("reconcile_retry", binding=str(ref), error=str(exc), defer=delay, job_try=tries)
    raise Retry(defer=delay) from exc


async def _dead_letter(ctx: dict[str, Any], ref: BindingRef, reason: str, exc: Exception) -> None:
    """Keep a binding-level dead letter (no ``uid``) of a run that failed for good.

    It stays until ``syncd replay`` or until a later run of the binding succeeds (the
    runner resolves it then); the status keeps the reason as ``last_error``.
    """
    error = f"{type(exc).__name__}: {exc}"
    log.error("reconcile_failed", binding=str(ref), error=error)
    await ctx["store"].add_dead_letter(
        ref,
        {
            "kind": "binding",
            "reason": reason,
            "error": error,
            "at": datetime.now(UTC).isoformat(),
            "tries": int(ctx.get("job_try") or 1),
        },
    )


async def poll_due(ctx: dict[str, Any]) -> int:
    """Cron: request a reconcile of every binding whose poll interval (CalDAV) or refresh
    (ICS feed) has passed."""
    redis, requested = ctx["redis"], 0
    for tenant, binding in ctx["config"].bindings():
        ref = BindingRef(tenant.id, binding.id)
        if await queue.poll_due(redis, ref, poll_every(binding)):
            await queue.request_reconcile(redis, ref, "poll" if binding.caldav else "refresh")
            requested += 1
    return requested


def poll_every(binding: Binding) -> float:
    """Seconds between two polls of ``binding``: ``poll_interval``, or ``ics.refresh``."""
    return binding.ics.refresh if binding.ics is not None else binding.poll_interval


async def full_reconcile_all(ctx: dict[str, Any]) -> int:
    """Cron (daily): a full reconcile of every binding, the safety net for missed changes."""
    count = 0
    for tenant, binding in ctx["config"].bindings():
        ref = BindingRef(tenant.id, binding.id)
        await queue.request_reconcile(ctx["redis"], ref, "full", full=True)
        count += 1
    return count
