"""What ``/metrics`` and ``/status`` show about every binding, read in one round trip.

:func:`read_snapshot` runs one Lua script over all bindings (their status hash, dead
letters, conflicts and dirty mark) and arq's queue, so a scrape costs one Redis call
whatever the number of bindings. The values come back as :class:`BindingView` rows;
deciding health and lag is plain Python on them (:func:`lag_seconds`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from arq.constants import default_queue_name
from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import awaited, redis_errors

# KEYS: arq's queue, then per binding: status, dead letters, conflicts, dirty.  ARGV: the
# status fields wanted.  Returns {queue depth, then per binding: {status values}, dead
# count, last dead letter, conflicts, dirty}.
_SNAPSHOT = """
local out = {redis.call('ZCARD', KEYS[1])}
for i = 2, #KEYS, 4 do
  table.insert(out, redis.call('HMGET', KEYS[i], unpack(ARGV)))
  table.insert(out, redis.call('LLEN', KEYS[i + 1]))
  table.insert(out, redis.call('LINDEX', KEYS[i + 1], -1) or '')
  table.insert(out, redis.call('LLEN', KEYS[i + 2]))
  table.insert(out, redis.call('GET', KEYS[i + 3]) or '')
end
return out
"""
_PER_BINDING = (keys.STATUS, keys.DEAD_LETTERS, keys.CONFLICTS, keys.DIRTY)
# What health and lag are decided from (syncd.store.health); the rest is not read.
STATUS_FIELDS = ("state", "last_success", "last_error", "errors", "held_deletions")
_EPOCH_2001 = 1e9  # a dirty mark below this is the old "1" (no time known)


@dataclass(frozen=True, slots=True)
class BindingView:
    """One binding as the store sees it now.

    ``status`` holds :data:`STATUS_FIELDS` of the status hash (:meth:`RedisStore.get_status`)
    that are set; ``last_letter``
    the newest dead letter (None when there are none); ``dirty_since`` the Unix time of
    the oldest unserved request (None when none, or not known).
    """

    ref: BindingRef
    status: dict[str, Any]
    dead_letters: int
    last_letter: dict[str, Any] | None
    conflicts: int
    dirty: bool
    dirty_since: float | None

    @property
    def last_success(self) -> float | None:
        """Unix time of the last successful run (None: never)."""
        text = self.status.get("last_success")
        try:
            return datetime.fromisoformat(str(text)).timestamp() if text else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every binding's view plus arq's queue depth, read at one moment."""

    bindings: tuple[BindingView, ...]
    queue_depth: int
    taken_at: float = field(default=0.0)


def lag_seconds(view: BindingView, now: float) -> float | None:
    """How far the binding is behind: since its last success, or (never succeeded) since
    its first unserved request; None when neither is known."""
    since = view.last_success if view.last_success is not None else view.dirty_since
    return max(0.0, now - since) if since is not None else None


async def read_snapshot(redis: Redis, refs: Sequence[BindingRef], now: float) -> Snapshot:
    """All of it in one script call; ``StoreUnavailable``/``StoreError`` if Redis fails."""
    names = _key_names(tuple(refs))
    with redis_errors("snapshot"):
        call = redis.eval(_SNAPSHOT, len(names), *names, *STATUS_FIELDS)
        raw = cast(list[Any], await awaited(call))
    views = [_view(ref, raw[1 + 5 * i : 6 + 5 * i]) for i, ref in enumerate(refs)]
    return Snapshot(tuple(views), int(raw[0]), now)


@functools.lru_cache(maxsize=4)
def _key_names(refs: tuple[BindingRef, ...]) -> list[str]:
    """The script's keys for ``refs`` (cached: the same bindings are scraped again and again)."""
    names = [default_queue_name]
    for ref in refs:
        names.extend(keys.binding_key(ref, n) for n in _PER_BINDING)
    return names


def _view(ref: BindingRef, row: list[Any]) -> BindingView:
    values, dead, letter, conflicts, dirty = row
    status = {name: _json(blob) for name, blob in zip(STATUS_FIELDS, values, strict=True) if blob}
    last = _json(letter) if letter else None
    return BindingView(
        ref=ref,
        status=status,
        dead_letters=int(dead),
        last_letter=last if isinstance(last, dict) else None,
        conflicts=int(conflicts),
        dirty=bool(dirty),
        dirty_since=_since(_text(dirty)),
    )


def _needed(state: Any) -> tuple[str, ...]:
    """The status fields :func:`syncd.store.health.binding_health` reads in ``state``."""
    extra = {"failed": "last_error", "blocked": "last_error", "partial": "errors"}
    if state == "held":
        return ("state", "last_success", "held_deletions")
    return ("state", "last_success", extra[state]) if state in extra else ("state", "last_success")


def _since(mark: str) -> float | None:
    try:
        value = float(mark)
    except ValueError:
        return None
    return value if value > _EPOCH_2001 else None


def _json(blob: str | bytes) -> Any:
    try:
        return json.loads(blob)
    except ValueError:
        return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
