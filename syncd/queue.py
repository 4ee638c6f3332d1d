"""Reconcile requests: arq jobs, coalescing, dirty marks, the per-binding lock, push dedupe.

The only module that knows arq's enqueue API. The protocol, and why it loses nothing:

* A **request** (webhook callback, cron poll, CLI) sets the binding's *dirty mark*, then
  enqueues the reconcile job whose id carries the binding's current *generation*.
  If that job is already queued, arq refuses the duplicate and the queued job will see
  the mark: the request is coalesced.
* A reconcile **job** tries the binding's lock once (:func:`binding_lock`), which first
  bumps the generation: from that moment requests go to a fresh job id instead of the
  one arq still considers running (arq refuses an id while it is queued, running, or
  its result is kept). If another run holds the lock, the job ends at once and leaves
  the mark: the holder re-checks the mark after releasing.
* Holding the lock, the job clears the mark (:func:`take_dirty`). No mark: every request
  so far was served by an earlier run, so the job does nothing (this is what keeps a
  burst at two runs). Otherwise it reconciles; a request arriving during the run sets
  the mark again. After releasing the lock, :func:`rerun_if_dirty` queues a follow-up
  if the mark is set.
* If the work fails, the mark is put back (the next request, cron poll or arq retry
  redoes it) and no immediate follow-up is queued (no hot loop on a broken side).

:func:`run_exclusive` does all of this around the worker's reconcile coroutine; the
worker registers that coroutine with :func:`reconcile_function` (``keep_result=0``).
* A worker can die at any point (SIGKILL, OOM, a lost machine). Its lock expires after
  a short ttl (:mod:`syncd.store.lock`); the request it had taken is not lost, because
  taking the mark also wrote a *running record* that only the end of the run deletes
  (:mod:`syncd.store.runs`). Every worker's revive cron (:func:`revive_orphans`) puts
  the marks of a record whose lock is gone back and queues a run, so the binding is
  served again within the lock ttl plus one cron tick. arq itself would re-run the dead
  job only when its in-progress key expires (the longest job timeout plus 10 s) and
  never refreshes that key; the generation scheme keeps that stale job id out of the way.

"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar, cast

import structlog
from arq.connections import ArqRedis
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Function, func
from redis.asyncio import Redis

from syncd.errors import LockLost, StoreError
from syncd.model import BindingRef
from syncd.store import keys, runs
from syncd.store import lock as _lock
from syncd.store.batch import ScriptBatch
from syncd.store.connection import redis_settings
from syncd.store.guard import awaited, redis_errors
from syncd.store.lock import DEFAULT_LOCK_TTL_S, BindingLock, FencedSide, run_holding
from syncd.store.marks import (
    first_delivery,
    next_poll_at,
    ping,
    poll_phase,
    poll_slot,
    seen_delivery,
)

__all__ = [
    "DEFAULT_LOCK_TTL_S",
    "RECONCILE_TASK",
    "BindingLock",
    "FencedSide",
    "RunOutcome",
    "binding_lock",
    "dingtalk_listed",
    "first_delivery",
    "job_id_for",
    "job_started",
    "mark_dirty",
    "mark_full",
    "mark_pushed",
    "next_poll_at",
    "ping",
    "poll_phase",
    "poll_slot",
    "queue_delivery",
    "ready_reconciles",
    "reconcile_function",
    "redis_settings",
    "request_reconcile",
    "rerun_if_dirty",
    "revive_orphans",
    "run_exclusive",
    "seen_delivery",
    "take_dingtalk",
    "take_dirty",
    "take_full",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")

RECONCILE_TASK = "reconcile_binding"
"""The arq function name of a reconcile; its arguments are ``(tenant, binding, reason)``."""

_MAX_GENERATION_HOPS = 5

# Move the generation from ARGV[1] to ARGV[1] + 1, unless somebody already moved it.
_BUMP_IF = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current == tonumber(ARGV[1]) then return redis.call('INCR', KEYS[1]) end
return current
"""


def job_id_for(ref: BindingRef, generation: int = 0) -> str:
    """The arq job id of the binding's reconcile job of ``generation``."""
    return keys.reconcile_job_id(ref, generation)


def reconcile_function(
    coroutine: Callable[..., Coroutine[Any, Any, Any]],
    *,
    timeout_s: float | None = None,
    max_tries: int | None = None,
) -> Function:
    """The arq ``Function`` to register for ``coroutine(ctx, tenant, binding, reason)``.

    Named :data:`RECONCILE_TASK`, with ``keep_result=0`` so a finished job's id is free
    again at once (a kept result would make arq refuse that id).
    """
    return func(
        coroutine, name=RECONCILE_TASK, keep_result=0, timeout=timeout_s, max_tries=max_tries
    )


async def request_reconcile(
    pool: ArqRedis, ref: BindingRef, reason: str, *, full: bool = False
) -> bool:
    """Ask for a reconcile of ``ref``: mark it dirty, then queue its job.

    True if a new job was queued; False if a job that had not yet taken the dirty mark
    when this request set it will serve the request (coalesced). Either way a reconcile
    starts after this call. ``full`` makes the run re-list both sides (:func:`mark_full`);
    any ``reason`` but a poll (:data:`QUIET_REASONS`) makes it list DingTalk. Raises
    ``StoreUnavailable`` if Redis cannot be reached (the request was not taken).
    """
    if full:
        await mark_full(pool, ref)
    with redis_errors("request_reconcile"):
        if reason not in QUIET_REASONS:
            await pool.set(keys.binding_key(ref, keys.PUSHED), "1")
        await _set_dirty(pool, ref)
        return await _enqueue(pool, ref, reason)


QUIET_REASONS = frozenset({"poll", "caldav-push"})
"""Requests that do not by themselves ask for a DingTalk listing (:func:`take_dingtalk`):
a CalDAV poll, and a CalDAV server's WebDAV-Push message (:mod:`syncd.webhook.push`),
list DingTalk only when they must. Every other request (a DingTalk push, a revive, a
replay, an operator's or a test's) lists it."""


# One round trip per push (webhook, Stream, failedResults): dedupe check, then per binding
# its dirty mark, its DingTalk push mark (its run lists DingTalk: :func:`take_dingtalk`)
# and, unless its job of the current generation is queued (coalesced) or blocked by a kept
# result, that job exactly as arq's enqueue_job writes it; the push is remembered last, and
# only if every binding's work is stored. A kept result (-> 2) leaves that binding to the
# client's slow path (:func:`_enqueue`), which retires the generation.
# KEYS: push key, then per binding its dirty, generation and push-mark keys. ARGV: push
# ttl, queue, job prefix, result prefix, job expiry ms, score, then per binding job id
# base and job.
_QUEUE_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
local out = {}
local blocked = false
for i = 2, #KEYS, 3 do
  local k = (i - 2) / 3
  redis.call('SET', KEYS[i], '1')
  redis.call('SET', KEYS[i + 2], '1')
  local id = ARGV[7 + 2 * k] .. ':' .. (redis.call('GET', KEYS[i + 1]) or '0')
  if redis.call('EXISTS', ARGV[4] .. id) == 1 then
    out[#out + 1] = 2
    blocked = true
  elseif redis.call('EXISTS', ARGV[3] .. id) == 1 then
    out[#out + 1] = 0
  else
    redis.call('PSETEX', ARGV[3] .. id, ARGV[5], ARGV[8 + 2 * k])
    redis.call('ZADD', ARGV[2], ARGV[6], id)
    out[#out + 1] = 1
  end
end
if not blocked then redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) end
return out
"""
QUEUE_DELIVERY = ScriptBatch(_QUEUE_DELIVERY)
"""The pushes' script calls: concurrent ones go to Redis as one pipeline (group commit,
:mod:`syncd.store.batch`)."""


async def queue_delivery(
    pool: ArqRedis,
    tenant: str,
    push_id: str,
    refs: list[BindingRef],
    reason: str,
    ttl_s: int = 86400,
) -> list[bool] | None:
    """Request a reconcile of every binding in ``refs`` for one DingTalk push, deduped.

    None if ``push_id`` was already accepted for ``tenant`` (nothing is queued). Else, per
    binding, True if a new job was queued (False: coalesced into a queued one). The push
    is remembered (:func:`first_delivery`) only once every binding's request is stored, in
    the same Lua script in the common case, so a retry after a failure queues again.
    Raises ``StoreError`` (``StoreUnavailable`` if Redis is unreachable).
    """
    now_ms = timestamp_ms()
    keys_: list[str] = [keys.push_key(tenant, push_id)]
    args: list[Any] = [ttl_s, pool.default_queue_name, job_key_prefix, result_key_prefix]
    args += [pool.expires_extra_ms, now_ms]
    for ref in refs:
        names = (keys.DIRTY, keys.GENERATION, keys.PUSHED)
        keys_ += [keys.binding_key(ref, name) for name in names]
        job = serialize_job(
            RECONCILE_TASK,
            (ref.tenant, ref.binding, reason),
            {},
            None,
            now_ms,
            serializer=pool.job_serializer,
        )
        args += [keys.binding_key(ref, keys.RECONCILE_JOB), job]
    with redis_errors("queue_delivery"):
        reply = await QUEUE_DELIVERY.call(pool, keys_, args)
    out = [int(code) for code in cast(list[Any], reply)]
    if out == [-1]:
        return None
    queued = [code == 1 for code in out]
    blocked = [i for i, code in enumerate(out) if code == 2]
    if blocked:
        with redis_errors("queue_delivery"):
            for i in blocked:
                queued[i] = await _enqueue(pool, refs[i], reason)
        await first_delivery(pool, tenant, push_id, ttl_s)
    # The caller logs one line per push naming the bindings and which got a new job; per
    # binding only at debug (two info lines per push were ~6 % of the webhook's CPU).
    for i, (ref, new) in enumerate(zip(refs, queued, strict=True)):
        if i in blocked:
            continue  # _enqueue logged it
        log.debug(
            "reconcile_queued" if new else "reconcile_coalesced", binding=str(ref), reason=reason
        )
    return queued


async def _enqueue(pool: ArqRedis, ref: BindingRef, reason: str) -> bool:
    gen_key = keys.binding_key(ref, keys.GENERATION)
    for _ in range(_MAX_GENERATION_HOPS):
        generation = int(await pool.get(gen_key) or 0)
        job_id = job_id_for(ref, generation)
        job = await pool.enqueue_job(
            RECONCILE_TASK, ref.tenant, ref.binding, reason, _job_id=job_id
        )
        if job is not None:
            log.info("reconcile_queued", binding=str(ref), job_id=job_id, reason=reason)
            return True
        if not await pool.exists(result_key_prefix + job_id):
            # The job of this id is queued, or was queued after our mark was set (arq's
            # WATCH saw its key change) and may already have run: either way it starts
            # after the mark and takes it, so this request is served.
            log.debug("reconcile_coalesced", binding=str(ref), job_id=job_id, reason=reason)
            return False
        # Only a kept result blocks the id: a job of this generation ended without
        # reaching the lock (expired, or unknown to the worker). Retire the generation.
        log.warning("reconcile_generation_retired", binding=str(ref), job_id=job_id)
        await awaited(pool.eval(_BUMP_IF, 1, gen_key, str(generation)))
    raise StoreError(f"{ref}: could not queue a reconcile job after {_MAX_GENERATION_HOPS} tries")


async def ready_reconciles(redis: Redis) -> int:
    """Reconcile jobs in arq's queue that are due now: waiting or running (arq keeps a
    running job in its queue until it ends). Cron jobs are not counted."""
    with redis_errors("ready_reconciles"):
        ids = await redis.zrangebyscore(default_queue_name, "-inf", timestamp_ms())
    marker = f":{keys.RECONCILE_JOB}:".encode()
    return sum(1 for job_id in ids if marker in job_id)


async def job_started(redis: Redis, ref: BindingRef) -> int:
    """Start a new generation: later requests queue a new job id. Returns it.

    :func:`binding_lock` calls this; a job must never try the lock without it.
    """
    with redis_errors("job_started"):
        return int(await redis.incr(keys.binding_key(ref, keys.GENERATION)))


async def take_dirty(redis: Redis, ref: BindingRef, token: str = "") -> bool:
    """Atomically read and clear the binding's dirty mark (call while holding the lock).

    Taking it records the run (``token``: its lock's) until :func:`end_run`, so that a
    worker dying meanwhile does not lose the request (:func:`revive_orphans`).
    """
    return await runs.take_request(redis, ref, token)


async def rerun_if_dirty(pool: ArqRedis, ref: BindingRef) -> bool:
    """After releasing the lock: queue a follow-up if a request came in during the run.

    True if a new job was queued (False: not dirty, or a queued job will serve it).
    """
    with redis_errors("rerun_if_dirty"):
        if not await pool.exists(keys.binding_key(ref, keys.DIRTY)):
            return False
        return await _enqueue(pool, ref, "rerun")


async def mark_dirty(redis: Redis, ref: BindingRef) -> None:
    """Set the binding's dirty mark without queueing (a run holding the lock re-runs)."""
    with redis_errors("mark_dirty"):
        await _set_dirty(redis, ref)


async def _set_dirty(redis: Redis, ref: BindingRef) -> None:
    """Set the dirty mark; its value is when the oldest unserved request came (sync lag)."""
    await redis.set(keys.binding_key(ref, keys.DIRTY), f"{time.time():.3f}", nx=True)


async def mark_full(redis: Redis, ref: BindingRef) -> None:
    """Ask that the binding's next run re-lists both sides instead of using cursors.

    A separate mark, because a full request coalesced into a queued job would otherwise
    lose its reason. The run that takes it calls :func:`take_full`.
    """
    with redis_errors("mark_full"):
        await redis.set(keys.binding_key(ref, keys.FULL), "1")


async def take_full(redis: Redis, ref: BindingRef) -> bool:
    """Atomically read and clear the binding's full-reconcile mark (the run's record keeps it)."""
    return await runs.take_full(redis, ref)


async def take_dingtalk(redis: Redis, ref: BindingRef) -> bool:
    """Whether this run must list DingTalk, taking the binding's DingTalk push mark.

    True when a push (webhook, Stream, failedResults: :func:`queue_delivery`) named the
    binding since its last listing, when DingTalk was not listed within the tenant's
    ``dingtalk.list_every``, or when the last run failed. Call under the lock, after
    :func:`take_dirty`: the run's record keeps the mark, and a failed or crashed run puts
    it back (:func:`end_run`, :func:`revive_orphans`). False: the run lists DingTalk only if
    the other side's delta may be written to it (:func:`syncd.reconcile.reconcile`).
    """
    why = await runs.take_pushed(redis, ref)
    if why != "quiet":
        log.debug("dingtalk_listing_due", why=why)
    return why != "quiet"


async def mark_pushed(redis: Redis, refs: list[BindingRef]) -> None:
    """Make the next run of each of ``refs`` list DingTalk, as a push would (without
    queueing it): a run wrote to the DingTalk calendar these bindings also read."""
    if not refs:
        return
    with redis_errors("mark_pushed"):
        await redis.mset({keys.binding_key(ref, keys.PUSHED): "1" for ref in refs})


async def dingtalk_listed(
    redis: Redis, ref: BindingRef, *, listed: bool, committed: bool, every_s: float
) -> None:
    """After a run: a DingTalk listing whose cursor was committed is fresh for ``every_s``;
    a run that committed no cursor makes the next one list DingTalk. Best effort: a
    failure here costs the next run a listing, or at worst leaves a DingTalk change this
    run could not apply until the last listing's freshness expires."""
    if committed and not listed:
        return
    try:
        await runs.listed(redis, ref, fresh_for_s=every_s if committed else None)
    except StoreError as exc:
        log.warning("dingtalk_listing_not_recorded", error=str(exc))


async def end_run(redis: Redis, ref: BindingRef, token: str, *, failed: bool) -> None:
    """The run ``token`` ended: forget its record; a failed run puts the dirty mark back.

    Best effort: if Redis cannot be reached the record stays, and once the lock has
    expired :func:`revive_orphans` restores the mark instead.
    """
    try:
        await runs.end_run(redis, ref, token, restore=failed)
    except StoreError as exc:
        log.warning("run_end_not_recorded", error=str(exc))


async def revive_orphans(pool: ArqRedis, refs: list[BindingRef], *, sweep: bool = True) -> int:
    """Queue a run for every binding of ``refs`` whose request a dead worker left behind.

    See :mod:`syncd.store.runs` for what counts as orphaned. With ``sweep`` every binding
    of ``refs`` is looked at (O(bindings)); without, only those with a run in flight or a
    job queued (:func:`syncd.store.runs.active_refs`). Returns how many were found.
    """
    if not sweep:
        served = set(refs)
        refs = [ref for ref in await runs.active_refs(pool) if ref in served]
    found = await runs.find_orphans(pool, refs)
    for ref, why in found:
        log.warning("reconcile_revived", binding=str(ref), why=why)
        with redis_errors("revive"):
            await _enqueue(pool, ref, f"revive:{why}")
    return len(found)


@asynccontextmanager
async def binding_lock(
    redis: Redis, ref: BindingRef, ttl_s: float = DEFAULT_LOCK_TTL_S
) -> AsyncIterator[BindingLock]:
    """The reconcile lock of ``ref``, tried once (the yielded lock is true if taken).

    Starts a new generation first (:func:`job_started`), taken or not, so requests
    from now on queue a new job rather than coalescing into this ending one.
    """
    await job_started(redis, ref)
    async with _lock.binding_lock(redis, ref, ttl_s) as lock:
        yield lock


@dataclass(frozen=True, slots=True)
class RunOutcome(Generic[T]):
    """What :func:`run_exclusive` did.

    ``ran`` says whether the work ran to its end. If not, ``skipped`` says why:
    ``"locked"`` (another run holds the binding and re-runs if needed), ``"clean"`` (no
    request is pending: runs since the last request have served it) or ``"lost"`` (the
    work started but its lock expired under it, e.g. the worker was paused; it was
    stopped, none of its later store writes landed, and the lock's new owner or the
    revive cron serves the request). ``result`` is what the work returned,
    ``rerun_queued`` whether a follow-up job was queued for requests made meanwhile.
    """

    ran: bool
    skipped: Literal["locked", "clean", "lost"] | None = None
    result: T | None = None
    rerun_queued: bool = False


async def run_exclusive(
    pool: ArqRedis,
    ref: BindingRef,
    work: Callable[[], Coroutine[Any, Any, T]],
    *,
    lock_ttl_s: float = DEFAULT_LOCK_TTL_S,
    force: bool = False,
) -> RunOutcome[T]:
    """Run ``work`` as the binding's one reconcile, following the module's protocol.

    ``force`` runs the work even when no request is pending (``syncd sync``). The lock
    is refreshed every ``lock_ttl_s / 3`` while ``work`` runs; if it is lost anyway,
    ``work`` is cancelled and the outcome is ``skipped="lost"`` (no error: the binding
    is in other hands). Errors of ``work`` propagate after the mark is put back.
    """
    async with binding_lock(pool, ref, lock_ttl_s) as lock:
        if not lock.held:
            log.info("reconcile_skipped", why="locked")
            return RunOutcome(ran=False, skipped="locked")
        outcome = await _run_locked(pool, lock, work, force)
    if outcome.skipped == "lost":
        return outcome
    return replace(outcome, rerun_queued=await _rerun_quietly(pool, ref))


async def _rerun_quietly(pool: ArqRedis, ref: BindingRef) -> bool:
    """A failed follow-up enqueue leaves the mark set: the next request or poll serves it."""
    try:
        return await rerun_if_dirty(pool, ref)
    except StoreError as exc:
        log.warning("rerun_enqueue_failed", error=str(exc))
        return False


async def _run_locked(
    pool: ArqRedis,
    lock: BindingLock,
    work: Callable[[], Coroutine[Any, Any, T]],
    force: bool,
) -> RunOutcome[T]:
    ref = lock.ref
    if not await take_dirty(pool, ref, lock.token) and not force:
        log.info("reconcile_skipped", why="clean")
        return RunOutcome(ran=False, skipped="clean")
    try:
        result = await run_holding(lock, work)
    except LockLost as exc:
        # Not ours any more: leave the record (the revive cron restores it once the
        # lock is free) and write nothing else.
        log.warning("reconcile_abandoned", why=str(exc))
        return RunOutcome(ran=False, skipped="lost")
    except BaseException:
        await end_run(pool, ref, lock.token, failed=True)
        raise
    await end_run(pool, ref, lock.token, failed=False)
    return RunOutcome(ran=True, result=result)
