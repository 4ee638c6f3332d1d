"""The record of a run in progress, so that a crashed worker's request is not lost.

A run that takes the binding's dirty mark (:func:`take_request`) writes a ``running``
record (its lock token, and ``full`` if it took a full-reconcile mark) in the same
atomic step; it deletes the record when it ends, finished or failed
(:func:`end_run`). A worker that dies in between leaves the record behind while its
lock expires: :func:`find_orphans` turns every such record whose lock is gone back
into the dirty (and full) marks it consumed, and reports the binding so that the caller
queues a run. It also reports a binding whose current reconcile job is stuck "in
progress" at arq without anybody holding the lock (a worker died after arq handed it the
job and before the job began its generation), after moving it to a new generation.

Only the keys of :mod:`syncd.store.keys` and arq's in-progress key prefix are touched;
enqueueing is :mod:`syncd.queue`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from arq.constants import default_queue_name, in_progress_key_prefix
from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import redis_errors

# KEYS: dirty, running, running set.  ARGV: token, binding member.  Take the request and
# record who serves it (and since when the request waits: the mark's value, put back if
# the run fails); the binding joins the set of bindings with a record.
_TAKE = """
local since = redis.call('GET', KEYS[1])
if not since then return 0 end
redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'since', since)
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# KEYS: full, running.  Take a full-reconcile mark; a recorded run remembers it.
_TAKE_FULL = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'full', '1') end
return 1
"""

# KEYS: pushed, running, listed.  Take the DingTalk push mark (a recorded run remembers
# it). 2: a push named the binding; 1: no push, but DingTalk was not listed within
# list_every (the LISTED key expired) or the last run failed; 0: listing may be skipped.
_TAKE_PUSHED = """
if redis.call('DEL', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'pushed', '1') end
  return 2
end
if redis.call('EXISTS', KEYS[3]) == 0 then return 1 end
return 0
"""

# KEYS: running, dirty, pushed, listed, running set.  ARGV: token, "1" to put the dirty
# mark back, binding member.
# A failed run also puts the push mark back and forgets the last DingTalk listing, so
# the next run lists DingTalk.
_END = """
local owner = redis.call('HGET', KEYS[1], 'token')
local since = redis.call('HGET', KEYS[1], 'since') or '1'
local pushed = redis.call('HGET', KEYS[1], 'pushed')
if not owner or owner == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[5], ARGV[3])
end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], since, 'NX')
  if pushed then redis.call('SET', KEYS[3], '1') end
  redis.call('DEL', KEYS[4])
end
return 1
"""

# KEYS: running, lock, dirty, full, gen, pushed, listed, running set.  ARGV: arq
# in-progress key of the job id prefix, binding member (a stale member is dropped).
# 1: a run died (record left, lock gone): marks restored (and the last DingTalk listing
# forgotten).  2: the current job is stuck in progress at arq with nobody holding the
# lock: generation moved on.  0: nothing.
_ORPHAN = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'full') then redis.call('SET', KEYS[4], '1') end
  if redis.call('HGET', KEYS[1], 'pushed') then redis.call('SET', KEYS[6], '1') end
  redis.call('DEL', KEYS[7])
  redis.call('SET', KEYS[3], redis.call('HGET', KEYS[1], 'since') or '1', 'NX')
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[8], ARGV[2])
  return 1
end
redis.call('SREM', KEYS[8], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local gen = redis.call('GET', KEYS[5]) or '0'
if redis.call('EXISTS', ARGV[1] .. gen) == 1 then
  redis.call('INCR', KEYS[5])
  return 2
end
return 0
"""

Orphan = Literal["crashed_run", "stuck_job"]


def _key(ref: BindingRef, name: str) -> str:
    return keys.binding_key(ref, name)


async def take_request(redis: Redis, ref: BindingRef, token: str) -> bool:
    """Atomically clear the dirty mark and record the run ``token`` serving it.

    False (nothing recorded) when no request is pending.
    """
    script = redis.register_script(_TAKE)
    with redis_errors("take_dirty"):
        taken = await script(
            keys=[_key(ref, keys.DIRTY), _key(ref, keys.RUNNING), keys.RUNNING_SET],
            args=[token, keys.binding_member(ref)],
        )
    return bool(taken)


async def take_full(redis: Redis, ref: BindingRef) -> bool:
    """Atomically clear the full-reconcile mark; a recorded run keeps it in its record."""
    script = redis.register_script(_TAKE_FULL)
    with redis_errors("take_full"):
        taken = await script(keys=[_key(ref, keys.FULL), _key(ref, keys.RUNNING)])
    return bool(taken)


async def take_pushed(redis: Redis, ref: BindingRef) -> Literal["pushed", "due", "quiet"]:
    """Atomically clear the DingTalk push mark (a recorded run keeps it in its record) and
    say why DingTalk must be listed: ``pushed`` (a push named the binding), ``due`` (not
    listed within ``dingtalk.list_every``, or the last run failed), else ``quiet``."""
    script = redis.register_script(_TAKE_PUSHED)
    names = (keys.PUSHED, keys.RUNNING, keys.LISTED)
    with redis_errors("take_pushed"):
        code = await script(keys=[_key(ref, n) for n in names])
    return ("quiet", "due", "pushed")[int(code)]


async def listed(redis: Redis, ref: BindingRef, *, fresh_for_s: float | None) -> None:
    """Record the end of a run for the next one's :func:`take_pushed`: DingTalk was listed
    and its cursor committed (fresh for ``fresh_for_s`` seconds), or, with None, the run's
    cursors were not committed (the next run lists DingTalk)."""
    key = _key(ref, keys.LISTED)
    with redis_errors("dingtalk_listed"):
        if fresh_for_s is None:
            await redis.delete(key)
        else:
            await redis.set(key, "1", px=max(1, int(fresh_for_s * 1000)))


async def end_run(redis: Redis, ref: BindingRef, token: str, *, restore: bool) -> None:
    """Forget the record of run ``token``; ``restore`` puts the dirty mark back (failed run),
    with the DingTalk push mark it took, and forgets the last DingTalk listing."""
    script = redis.register_script(_END)
    run_keys = [_key(ref, n) for n in (keys.RUNNING, keys.DIRTY, keys.PUSHED, keys.LISTED)]
    run_keys.append(keys.RUNNING_SET)
    with redis_errors("end_run"):
        args = [token, "1" if restore else "0", keys.binding_member(ref)]
        await script(keys=run_keys, args=args)


async def find_orphans(redis: Redis, refs: Sequence[BindingRef]) -> list[tuple[BindingRef, Orphan]]:
    """Bindings whose request was orphaned by a dead worker, with their marks restored.

    One round trip for all ``refs``. The caller must queue a run for each one returned.
    """
    if not refs:
        return []
    names = (
        keys.RUNNING,
        keys.LOCK,
        keys.DIRTY,
        keys.FULL,
        keys.GENERATION,
        keys.PUSHED,
        keys.LISTED,
    )
    script = redis.register_script(_ORPHAN)
    with redis_errors("find_orphans"):
        async with redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                prefix = in_progress_key_prefix + keys.reconcile_job_id(ref, 0)[:-1]
                orphan_keys = [*(_key(ref, n) for n in names), keys.RUNNING_SET]
                args = [prefix, keys.binding_member(ref)]
                await script(keys=orphan_keys, args=args, client=pipe)
            found = await pipe.execute()
    kinds: dict[int, Orphan] = {1: "crashed_run", 2: "stuck_job"}
    return [(ref, kinds[int(code)]) for ref, code in zip(refs, found, strict=True) if int(code)]


async def active_refs(redis: Redis) -> set[BindingRef]:
    """The bindings that may have an orphaned request: those with a ``running`` record (in
    :data:`~syncd.store.keys.RUNNING_SET`) and those with a reconcile job in arq's queue
    (a job stays there while in progress). Costs O(runs in flight + jobs queued), not
    O(bindings); records written before the set existed are only found by a full
    :func:`find_orphans` over every binding."""
    with redis_errors("active_runs"):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.RUNNING_SET)
            pipe.zrange(default_queue_name, 0, -1)
            members, job_ids = await pipe.execute()
    found = {keys.parse_binding_member(_text(m)) for m in members}
    found |= {keys.parse_reconcile_job_id(_text(j)) for j in job_ids}
    return {ref for ref in found if ref is not None}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
