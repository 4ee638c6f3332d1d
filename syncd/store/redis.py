"""The Redis :class:`~syncd.sync.ports.MappingStore`.

Key layout: :mod:`syncd.store.keys`. A pair and its two index entries (DingTalk id → uid,
CalDAV href → uid) change together in one Lua script, so concurrent writers never leave
an index entry pointing at a pair that no longer claims it. ``load_pairs`` is one
HGETALL whatever the number of pairs; ``load_touched`` (an incremental run) reads only the
pairs its changes name, through the indexes. Every redis-py exception leaves this module as
``StoreUnavailable`` or ``StoreError`` (:mod:`syncd.store.guard`).

Every write to a binding is fenced: inside a reconcile run holding the binding's lock
(:func:`syncd.store.lock.run_holding`), the write's script first checks that the lock
still holds the run's token and raises :class:`~syncd.errors.LockLost` if not
(:func:`~syncd.store.guard.fenced`; the lock key is each script's last key, the
token its last argument). Outside a run (tests, ``syncd replay``) writes are unfenced.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import structlog
from redis.asyncio import Redis

from syncd.errors import StoreError
from syncd.model import BindingRef, PairState, Side
from syncd.store import keys
from syncd.store.codec import (
    conflict_from_json,
    conflict_to_json,
    dead_letter_from_json,
    dead_letter_to_json,
    dumps,
    pair_from_json,
    pair_to_json,
    status_fields,
    status_from_fields,
)
from syncd.store.guard import awaited, fence_token, fenced, redis_errors
from syncd.sync.ports import ConflictRecord, PairSlice
from syncd.sync.records import DeadLetter, RunStatus

log = structlog.get_logger(__name__)

# KEYS: pairs, by_dt, by_dav, lock.  ARGV: uid, pair JSON, dingtalk id or "", href or "",
# fence. An old index entry is removed only if it still points at this uid (another pair
# may have claimed the id since).
_SAVE_PAIR = fenced("""
local uid, blob, dt, href = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = redis.call('HGET', KEYS[1], uid)
if old then
  local o = cjson.decode(old)
  local odt, ohref = o['dingtalk_id'] or o['d'], o['caldav_href'] or o['h']
  if type(odt) == 'string' and odt ~= dt and redis.call('HGET', KEYS[2], odt) == uid then
    redis.call('HDEL', KEYS[2], odt)
  end
  if type(ohref) == 'string' and ohref ~= href and redis.call('HGET', KEYS[3], ohref) == uid then
    redis.call('HDEL', KEYS[3], ohref)
  end
end
redis.call('HSET', KEYS[1], uid, blob)
if dt ~= '' then redis.call('HSET', KEYS[2], dt, uid) end
if href ~= '' then redis.call('HSET', KEYS[3], href, uid) end
return 1
""")

# KEYS: pairs, by_dt, by_dav, lock.  ARGV: uid, fence.
_DROP_PAIR = fenced("""
local uid = ARGV[1]
local old = redis.call('HGET', KEYS[1], uid)
if not old then return 0 end
local o = cjson.decode(old)
for i, id in ipairs({o['dingtalk_id'] or o['d'] or false, o['caldav_href'] or o['h'] or false}) do
  if type(id) == 'string' and redis.call('HGET', KEYS[i + 1], id) == uid then
    redis.call('HDEL', KEYS[i + 1], id)
  end
end
redis.call('HDEL', KEYS[1], uid)
return 1
""")

# KEYS: cursors, lock.  ARGV: JSON {side: token or null}, fence.
_SET_CURSORS = fenced("""
for side, token in pairs(cjson.decode(ARGV[1])) do
  if token == cjson.null then
    redis.call('HDEL', KEYS[1], side)
  else
    redis.call('HSET', KEYS[1], side, token)
  end
end
return 1
""")

# KEYS: a list, lock.  ARGV: the value, fence.
_APPEND = fenced("""
return redis.call('RPUSH', KEYS[1], ARGV[1])
""")

# KEYS: a hash, lock.  ARGV: field, value, field, value, ..., fence.
_MERGE = fenced("""
for i = 1, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
""")

# KEYS: an index, pairs.  ARGV: the id.  The pair an id maps to, read atomically.
_FIND = """
local uid = redis.call('HGET', KEYS[1], ARGV[1])
if not uid then return false end
return redis.call('HGET', KEYS[2], uid)
"""


# KEYS: pairs, by_dt, by_dav.  ARGV: number of DingTalk ids, the ids, number of hrefs, the
# hrefs, then uids.  Returns {pair count, 1, uid, blob, uid, blob, ...}: the pairs the ids
# and uids name.  When an index is shorter than the pair hash some pair lacks a side (or
# shares an id with another): returns {pair count, 0} and the caller reads every pair.
_TOUCHED = """
local total = redis.call('HLEN', KEYS[1])
if redis.call('HLEN', KEYS[2]) ~= total or redis.call('HLEN', KEYS[3]) ~= total then
  return {total, 0}
end
local wanted, seen = {}, {}
local function want(uid)
  if uid and not seen[uid] then
    seen[uid] = true
    table.insert(wanted, uid)
  end
end
local at = 1
for _, index in ipairs({KEYS[2], KEYS[3]}) do
  local n = tonumber(ARGV[at])
  for i = at + 1, at + n do want(redis.call('HGET', index, ARGV[i])) end
  at = at + n + 1
end
for i = at, #ARGV do want(ARGV[i]) end
local out = {total, 1}
for first = 1, #wanted, 500 do
  local chunk = {}
  for i = first, math.min(first + 499, #wanted) do table.insert(chunk, wanted[i]) end
  local blobs = redis.call('HMGET', KEYS[1], unpack(chunk))
  for i, uid in ipairs(chunk) do
    if blobs[i] then
      table.insert(out, uid)
      table.insert(out, blobs[i])
    end
  end
end
return out
"""


# KEYS: dead letters, lock.  ARGV: "1" to resolve binding-level letters (no uid), then uids whose
# item-level letters are resolved, fence.  Removes those letters; returns them (JSON text).
# Unreadable entries are kept.
_RESOLVE = fenced("""
local binding = ARGV[1] == '1'
local uids = {}
for i = 2, #ARGV - 1 do uids[ARGV[i]] = true end
local gone, seen = {}, {}
for _, blob in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, entry = pcall(cjson.decode, blob)
  if ok and type(entry) == 'table' then
    local uid = entry['uid']
    if (type(uid) == 'string' and uids[uid]) or (type(uid) ~= 'string' and binding) then
      table.insert(gone, blob)
      if not seen[blob] then redis.call('LREM', KEYS[1], 0, blob) end
      seen[blob] = true
    end
  end
end
return gone
""")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _readable_letters(ref: BindingRef, raw: list[str | bytes]) -> list[DeadLetter]:
    """The dead letters of ``raw`` JSON texts; unreadable ones are logged and left out."""
    letters = []
    for blob in raw:
        try:
            letters.append(dead_letter_from_json(blob))
        except StoreError as exc:
            log.error("store_dead_letter_corrupt", binding=str(ref), error=str(exc))
    return letters


def _pick(
    pairs: dict[str, PairState], dts: set[str], hrefs: set[str], uids: set[str]
) -> dict[str, PairState]:
    """The pairs claiming one of these ids or uids, and every pair lacking a side."""
    return {
        uid: p
        for uid, p in pairs.items()
        if uid in uids
        or not (p.dingtalk_id and p.caldav_href)
        or p.dingtalk_id in dts
        or p.caldav_href in hrefs
    }


class RedisStore:
    """A :class:`~syncd.sync.ports.MappingStore` on a shared Redis (see :mod:`.keys`)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._save = redis.register_script(_SAVE_PAIR)
        self._drop = redis.register_script(_DROP_PAIR)
        self._find = redis.register_script(_FIND)
        self._touched = redis.register_script(_TOUCHED)
        self._set_cursors = redis.register_script(_SET_CURSORS)
        self._append = redis.register_script(_APPEND)
        self._merge = redis.register_script(_MERGE)
        self._resolve = redis.register_script(_RESOLVE)

    @staticmethod
    def _pair_keys(ref: BindingRef) -> list[str]:
        names = (keys.PAIRS, keys.BY_DINGTALK, keys.BY_HREF, keys.LOCK)
        return [keys.binding_key(ref, n) for n in names]

    @staticmethod
    def _fenced(ref: BindingRef, name: str) -> list[str]:
        """The binding's key ``name`` and its lock key (the last key of a fenced script)."""
        return [keys.binding_key(ref, name), keys.binding_key(ref, keys.LOCK)]

    async def load_pairs(self, ref: BindingRef) -> dict[str, PairState]:
        """All pairs of the binding, keyed by uid, in one round trip."""
        with redis_errors("load_pairs"):
            raw = await awaited(self._redis.hgetall(keys.binding_key(ref, keys.PAIRS)))
        return {_text(uid): self._decode(ref, _text(uid), blob) for uid, blob in raw.items()}

    async def load_touched(
        self,
        ref: BindingRef,
        *,
        dingtalk_ids: Collection[str] = (),
        hrefs: Collection[str] = (),
        uids: Collection[str] = (),
    ) -> PairSlice:
        """The pairs these ids touch, every pair lacking a side, and the number of pairs.

        One script: the ids through the two indexes, then HMGET of the pair hash. Only when
        the indexes are shorter than the pair hash (some pair lacks a side) does it read
        every pair and pick.
        """
        dts, dav = list(dingtalk_ids), list(hrefs)
        args = [str(len(dts)), *dts, str(len(dav)), *dav, *uids]
        with redis_errors("load_touched"):
            reply = await self._touched(keys=self._pair_keys(ref)[:3], args=args)
        total, indexed, rest = int(reply[0]), int(reply[1]), reply[2:]
        if not indexed:
            every = await self.load_pairs(ref)
            return PairSlice(_pick(every, set(dts), set(dav), set(uids)), total)
        pairs: dict[str, PairState] = {}
        for uid, blob in zip(rest[::2], rest[1::2], strict=True):
            pairs[_text(uid)] = self._decode(ref, _text(uid), blob)
        return PairSlice(pairs, total)

    @staticmethod
    def _decode(ref: BindingRef, uid: str, blob: str | bytes) -> PairState:
        try:
            return pair_from_json(blob)
        except StoreError as exc:
            log.error("store_pair_corrupt", binding=str(ref), uid=uid, error=str(exc))
            raise StoreError(f"{ref}: stored pair {uid!r} is corrupt: {exc}") from exc

    async def some_hrefs(self, ref: BindingRef, count: int) -> list[str]:
        """Up to ``count`` distinct CalDAV hrefs of the binding's pairs, at random (HRANDFIELD)."""
        if count <= 0:
            return []
        with redis_errors("some_hrefs"):
            raw = await awaited(self._redis.hrandfield(keys.binding_key(ref, keys.BY_HREF), count))
        return [_text(h) for h in raw or ()]

    async def save_pair(self, ref: BindingRef, pair: PairState) -> None:
        """Insert or replace the pair, moving its index entries in the same atomic step."""
        args = [pair.uid, pair_to_json(pair), pair.dingtalk_id or "", pair.caldav_href or ""]
        args.append(fence_token(ref))
        with redis_errors("save_pair"):
            await self._save(keys=self._pair_keys(ref), args=args)

    async def drop_pair(self, ref: BindingRef, uid: str) -> None:
        """Forget the pair and its index entries atomically; an unknown uid is fine."""
        with redis_errors("drop_pair"):
            await self._drop(keys=self._pair_keys(ref), args=[uid, fence_token(ref)])

    async def _find_by(self, ref: BindingRef, index: str, item_id: str) -> PairState | None:
        pair_keys = [keys.binding_key(ref, index), keys.binding_key(ref, keys.PAIRS)]
        with redis_errors("find_pair"):
            blob = await self._find(keys=pair_keys, args=[item_id])
        return pair_from_json(blob) if blob else None

    async def find_by_dingtalk_id(self, ref: BindingRef, dingtalk_id: str) -> PairState | None:
        """The pair whose DingTalk side is ``dingtalk_id``, if any."""
        return await self._find_by(ref, keys.BY_DINGTALK, dingtalk_id)

    async def find_by_href(self, ref: BindingRef, href: str) -> PairState | None:
        """The pair whose CalDAV side is ``href``, if any."""
        return await self._find_by(ref, keys.BY_HREF, href)

    async def get_cursor(self, ref: BindingRef, side: Side) -> str | None:
        """The committed cursor of one side, or None before the first complete sync."""
        with redis_errors("get_cursor"):
            token = await awaited(
                self._redis.hget(keys.binding_key(ref, keys.CURSORS), Side(side).value)
            )
        return _text(token) if token is not None else None

    async def set_cursors(self, ref: BindingRef, cursors: Mapping[Side, str | None]) -> None:
        """Commit the given cursors in one atomic step; None clears a side's cursor."""
        if not cursors:
            return
        blob = dumps({Side(s).value: t for s, t in cursors.items()})
        with redis_errors("set_cursors"):
            await self._set_cursors(
                keys=self._fenced(ref, keys.CURSORS), args=[blob, fence_token(ref)]
            )

    async def add_conflict(self, ref: BindingRef, record: ConflictRecord) -> None:
        """Append a decided conflict (kept in the order recorded)."""
        args = [conflict_to_json(record), fence_token(ref)]
        with redis_errors("add_conflict"):
            await self._append(keys=self._fenced(ref, keys.CONFLICTS), args=args)

    async def list_conflicts(self, ref: BindingRef) -> list[ConflictRecord]:
        """Every readable recorded conflict, oldest first (unreadable ones are logged)."""
        with redis_errors("list_conflicts"):
            raw = await awaited(self._redis.lrange(keys.binding_key(ref, keys.CONFLICTS), 0, -1))
        records = []
        for blob in raw:
            try:
                records.append(conflict_from_json(blob))
            except StoreError as exc:
                log.error("store_conflict_corrupt", binding=str(ref), error=str(exc))
        return records

    async def add_dead_letter(self, ref: BindingRef, letter: DeadLetter) -> None:
        """Append a dead letter."""
        args = [dead_letter_to_json(letter), fence_token(ref)]
        with redis_errors("add_dead_letter"):
            await self._append(keys=self._fenced(ref, keys.DEAD_LETTERS), args=args)

    async def list_dead_letters(self, ref: BindingRef) -> list[DeadLetter]:
        """Every readable dead letter, oldest first (unreadable ones are logged)."""
        with redis_errors("list_dead_letters"):
            raw = await awaited(self._redis.lrange(keys.binding_key(ref, keys.DEAD_LETTERS), 0, -1))
        return _readable_letters(ref, raw)

    async def clear_dead_letters(self, ref: BindingRef, count: int | None = None) -> None:
        """Forget the binding's oldest ``count`` dead letters (all of them when None)."""
        key = keys.binding_key(ref, keys.DEAD_LETTERS)
        with redis_errors("clear_dead_letters"):
            if count is None:
                await self._redis.delete(key)
            else:
                await awaited(self._redis.ltrim(key, count, -1))

    async def resolve_dead_letters(
        self, ref: BindingRef, *, binding: bool, uids: Collection[str] = ()
    ) -> list[DeadLetter]:
        """Remove the dead letters a successful run healed, atomically; returns them.

        ``binding`` resolves the binding-level letters (those without a ``uid``: a run
        of the binding now succeeds); ``uids`` the item-level letters of those items (they
        were written successfully since).
        """
        if not binding and not uids:
            return []
        args = ["1" if binding else "0", *uids, fence_token(ref)]
        with redis_errors("resolve_dead_letters"):
            gone = await self._resolve(keys=self._fenced(ref, keys.DEAD_LETTERS), args=args)
        return _readable_letters(ref, gone)

    async def set_status(self, ref: BindingRef, status: RunStatus) -> None:
        """Merge ``status`` into the stored status: the fields it sets replace, others stay."""
        stored = status_fields(status)
        if not stored:
            return
        args = [text for name, value in stored.items() for text in (name, dumps(value))]
        args.append(fence_token(ref))
        with redis_errors("set_status"):
            await self._merge(keys=self._fenced(ref, keys.STATUS), args=args)

    async def get_status(self, ref: BindingRef) -> RunStatus:
        """The merged status of the binding (``never-run`` before the first run)."""
        with redis_errors("get_status"):
            raw = await awaited(self._redis.hgetall(keys.binding_key(ref, keys.STATUS)))
        status: dict[str, Any] = {}
        for name, blob in raw.items():
            try:
                status[_text(name)] = json.loads(blob)
            except ValueError as exc:
                log.error(
                    "store_status_corrupt", binding=str(ref), field=_text(name), error=repr(exc)
                )
        return status_from_fields(status)

    async def wipe(self, ref: BindingRef) -> None:
        """Forget everything the store keeps about the binding (not its queue state)."""
        with redis_errors("wipe"):
            await self._redis.delete(*(keys.binding_key(ref, n) for n in keys.STORE_KEYS))
