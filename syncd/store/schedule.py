"""The poll schedule: one Redis sorted set of every binding's next poll time.

Members are bindings (:func:`member`), scores the Unix time each is next due. A cron tick
takes the due members with one script (:func:`take_due`), which also pushes their score
:data:`CLAIM_HOLD_S` ahead, so two workers ticking at once never take the same binding;
the taker then writes each one's real next due time (:func:`reschedule`). A tick costs
O(due + log n), not O(bindings). A taker that dies between the two steps loses nothing:
its bindings come due again after the hold.

:func:`sync_members` makes the set follow the configuration (added bindings are due at
once, removed ones leave, a shortened interval pulls a binding's next poll in); the
worker calls it at start and after every reload, not every tick.

Besides the set, a binding whose reconcile saw a change keeps the time of that change in
its ``changed`` key (:func:`note_change`), which expires when it no longer matters; the
taker reads it for the bindings it took (:func:`last_changes`) to pick their next interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, unquote

from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import awaited, redis_errors

CLAIM_HOLD_S = 60.0
"""How far a taken binding's score is pushed until its taker writes the real next time."""

_TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[3]), m)
end
return due
"""

# ARGV: now, then (member, next due if the interval changed) pairs. New members are due
# now; existing ones keep their time unless it is later than the given one; members not
# listed are removed. Returns {added, removed}.
_SYNC = """
local now = tonumber(ARGV[1])
local wanted, added, removed = {}, 0, 0
for i = 2, #ARGV, 2 do
  local m, at = ARGV[i], tonumber(ARGV[i + 1])
  wanted[m] = true
  local cur = redis.call('ZSCORE', KEYS[1], m)
  if not cur then
    redis.call('ZADD', KEYS[1], now, m)
    added = added + 1
  elseif tonumber(cur) > at then
    redis.call('ZADD', KEYS[1], at, m)
  end
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not wanted[m] then
    redis.call('ZREM', KEYS[1], m)
    removed = removed + 1
  end
end
return {added, removed}
"""


def member(ref: BindingRef) -> str:
    """The schedule member of ``ref`` (both ids percent-encoded, so ``/`` splits them)."""
    return f"{quote(ref.tenant, safe='')}/{quote(ref.binding, safe='')}"


def ref_of(name: str | bytes) -> BindingRef:
    """The binding a schedule member names (inverse of :func:`member`)."""
    text = name.decode() if isinstance(name, bytes) else name
    tenant, _, binding = text.partition("/")
    return BindingRef(unquote(tenant), unquote(binding))


async def sync_members(
    redis: Redis, latest_due: Mapping[BindingRef, float], now: float
) -> tuple[int, int]:
    """Make the schedule hold exactly the bindings of ``latest_due``; ``(added, removed)``.

    A new binding is due at ``now``. An existing one keeps its next time unless that is
    later than its ``latest_due`` (its interval was shortened by a reload).
    """
    args = [repr(now)]
    for ref, at in latest_due.items():
        args += [member(ref), repr(at)]
    with redis_errors("poll_schedule_sync"):
        reply = await awaited(redis.eval(_SYNC, 1, keys.POLL_SCHEDULE, *args))
    return int(reply[0]), int(reply[1])


async def take_due(redis: Redis, now: float, limit: int) -> list[BindingRef]:
    """Take at most ``limit`` bindings due at ``now``, earliest first, atomically.

    Taken ones are held :data:`CLAIM_HOLD_S` ahead; the caller :func:`reschedule` s them.
    """
    if limit <= 0:
        return []
    with redis_errors("poll_schedule_take"):
        script = redis.eval(_TAKE, 1, keys.POLL_SCHEDULE, repr(now), str(limit), repr(CLAIM_HOLD_S))
        got = await awaited(script)
    return [ref_of(m) for m in got]


async def reschedule(redis: Redis, next_due: Mapping[BindingRef, float]) -> None:
    """Set the next poll time of bindings already in the schedule (removed ones stay out)."""
    if not next_due:
        return
    with redis_errors("poll_schedule_set"):
        await redis.zadd(keys.POLL_SCHEDULE, {member(r): at for r, at in next_due.items()}, xx=True)


async def bring_forward(redis: Redis, ref: BindingRef, at: float) -> None:
    """Make ``ref`` due no later than ``at`` (only if it is scheduled, only earlier)."""
    with redis_errors("poll_schedule_forward"):
        await redis.zadd(keys.POLL_SCHEDULE, {member(ref): at}, xx=True, lt=True)


async def next_due(redis: Redis, ref: BindingRef) -> float | None:
    """When ``ref`` is next due, or None when it is not scheduled."""
    with redis_errors("poll_schedule_score"):
        score = await redis.zscore(keys.POLL_SCHEDULE, member(ref))
    return None if score is None else float(score)


async def note_change(redis: Redis, ref: BindingRef, at: float, remember_s: float) -> None:
    """Remember that a run of ``ref`` saw a change at ``at``, for ``remember_s`` seconds."""
    with redis_errors("poll_note_change"):
        key = keys.binding_key(ref, keys.CHANGED)
        await redis.set(key, repr(at), px=max(1, int(remember_s * 1000)))


async def last_changes(redis: Redis, refs: Sequence[BindingRef]) -> list[float | None]:
    """The remembered last change time of each of ``refs`` (None: none remembered)."""
    if not refs:
        return []
    with redis_errors("poll_last_changes"):
        raw = await redis.mget([keys.binding_key(r, keys.CHANGED) for r in refs])
    return [None if v is None else float(v) for v in raw]


async def scheduled(redis: Redis) -> Iterable[BindingRef]:
    """Every binding in the schedule (tests, status)."""
    with redis_errors("poll_schedule_list"):
        names = await redis.zrange(keys.POLL_SCHEDULE, 0, -1)
    return [ref_of(n) for n in names]
