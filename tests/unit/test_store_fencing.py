"""Fenced writes: a run whose lock is no longer its own cannot change the store or a side.

Against a real Redis: every write of the Redis mapping store checks, in the same Lua
script, that the binding's lock still holds the current lease's token; the lease's local
deadline stops side writes of a run that stalled past it; the heartbeat's watchdog
cancels a run whose refreshes keep failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio as aredis
from arq.connections import ArqRedis

from syncd import queue
from syncd.errors import LockLost, StoreUnavailable
from syncd.model import BindingRef, Changes, Event, Side
from syncd.store import keys
from syncd.store.connection import connect
from syncd.store.guard import Lease, leased
from syncd.store.lock import FencedSide
from syncd.store.redis import RedisStore
from syncd.sync.ports import ConflictRecord, Written
from syncd.sync.records import DeadLetter, RunStatus
from tests.fakes import rich_event, stored_pair
from tests.fixtures.redis_server import RedisServer

REF = BindingRef("acme", "alice-work")
LOCK = keys.binding_key(REF, keys.LOCK)


def _conflict() -> ConflictRecord:
    event = rich_event("uid-c")
    return ConflictRecord("uid-c", ("summary",), event, event, None, Side.DINGTALK, "2026-01-01")


WRITES: dict[str, Callable[[RedisStore], Awaitable[None]]] = {
    "save_pair": lambda s: s.save_pair(REF, stored_pair(1)),
    "drop_pair": lambda s: s.drop_pair(REF, "uid-0"),
    "set_cursors": lambda s: s.set_cursors(REF, {Side.CALDAV: "new", Side.DINGTALK: None}),
    "add_conflict": lambda s: s.add_conflict(REF, _conflict()),
    "add_dead_letter": lambda s: s.add_dead_letter(REF, DeadLetter("binding", "x", "t")),
    "set_status": lambda s: s.set_status(REF, RunStatus(state="ok")),
}


def _lease(token: str, ref: BindingRef = REF) -> Lease:
    return Lease(ref, token, 30.0, time.monotonic())


async def _snapshot(redis: aredis.Redis) -> dict[bytes, bytes | None]:
    return {k: await redis.dump(k) for k in sorted(await redis.keys("syncd:*"))}


async def _seeded(redis: aredis.Redis) -> RedisStore:
    """A store holding one pair (uid-0) and a DingTalk cursor, locked by "owner"."""
    store = RedisStore(redis)
    await store.save_pair(REF, stored_pair(0))
    await store.set_cursors(REF, {Side.DINGTALK: "old"})
    await redis.set(LOCK, "owner")
    return store


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
async def test_write_of_a_stale_lease_is_refused_and_changes_nothing(
    redis_client: aredis.Redis, write: str
) -> None:
    """Inside a run whose token is not the lock's, each store write raises LockLost, atomically."""
    store = await _seeded(redis_client)
    before = await _snapshot(redis_client)
    with leased(_lease("stale")), pytest.raises(LockLost):
        await WRITES[write](store)
    assert await _snapshot(redis_client) == before


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
async def test_write_of_the_owner_or_outside_a_run_lands(
    redis_client: aredis.Redis, write: str
) -> None:
    """The lock's owner writes normally; so does code outside any run (and a lease of
    another binding does not fence this one)."""
    for lease in (_lease("owner"), None, _lease("other", BindingRef("acme", "bob"))):
        store = await _seeded(redis_client)
        before = await _snapshot(redis_client)
        if lease is None:
            await WRITES[write](store)
        else:
            with leased(lease):
                await WRITES[write](store)
        assert await _snapshot(redis_client) != before
        await redis_client.flushall()


async def test_a_write_after_the_lock_expired_is_refused(redis_client: aredis.Redis) -> None:
    """No successor needed: once the lock is gone, the old token fences nothing in."""
    store = await _seeded(redis_client)
    await redis_client.delete(LOCK)
    with leased(_lease("owner")), pytest.raises(LockLost):
        await store.save_pair(REF, stored_pair(2))
    assert await store.find_by_dingtalk_id(REF, "dt-2") is None


@pytest.mark.parametrize("successor", [False, True], ids=["lock-expired", "lock-taken"])
async def test_event_loop_stall_past_the_ttl_ends_the_run_without_writing(
    pool: ArqRedis, redis_url: str, successor: bool
) -> None:
    """A run that blocks its event loop longer than the lock ttl ends "lost" and the write it
    attempts right after the stall does not land, whether or not another worker took the
    lock meanwhile (whose lock the lost run then leaves alone)."""
    store = RedisStore(pool)
    await pool.set(keys.binding_key(REF, keys.DIRTY), "1")
    other_worker = redis.Redis.from_url(redis_url)

    async def work() -> None:
        await store.save_pair(REF, stored_pair(1))
        time.sleep(1.3)  # noqa: ASYNC251 - the point: a stalled event loop
        if successor:  # another worker took over during the stall
            other_worker.set(LOCK, "successor")
        await store.save_pair(REF, stored_pair(2))

    outcome = await queue.run_exclusive(pool, REF, work, lock_ttl_s=1.0)
    assert (outcome.ran, outcome.skipped) == (False, "lost")
    assert await store.find_by_dingtalk_id(REF, "dt-1") is not None
    assert await store.find_by_dingtalk_id(REF, "dt-2") is None
    other_worker.close()
    assert await pool.get(LOCK) == (b"successor" if successor else None)
    assert await pool.exists(keys.binding_key(REF, keys.RUNNING))  # for the revive cron


class _Recorder:
    """A CalendarSide that records writes (the fence must stop them before they get here)."""

    side = Side.CALDAV

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def changes(self, cursor: str | None) -> Changes:
        self.calls.append("changes")
        return Changes((), (), "cursor", complete=True)

    async def create(self, event: Event) -> Written:
        self.calls.append("create")
        return Written("href", "etag", event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        self.calls.append("update")
        return Written(item_id, "etag", event)

    async def delete(self, item_id: str, etag: str | None) -> None:
        self.calls.append("delete")


async def test_fenced_side_writes_only_while_the_lease_holds() -> None:
    """Past the lease's deadline a side write cancels the run instead of being sent;
    reads still pass, and outside a run everything passes."""
    inner = _Recorder()
    side = FencedSide(inner)
    event = rich_event("uid-f")
    await side.create(event)  # no lease: a dry run or a test
    revoked: list[bool] = []
    lease = Lease(REF, "t", 0.2, time.monotonic(), on_revoke=lambda: revoked.append(True))
    with leased(lease):
        await side.update("href", event, None)
        await asyncio.sleep(0.25)
        await side.changes(None)
        for write in (side.create(event), side.update("h", event, "e"), side.delete("h", None)):
            with pytest.raises(asyncio.CancelledError):
                await write
    assert inner.calls == ["create", "update", "changes"]
    assert revoked == [True]  # the run was told once


async def test_unreachable_redis_cancels_the_run_at_the_lease_deadline(
    own_redis: RedisServer,
) -> None:
    """When refreshes keep failing, the watchdog cancels the work when the lease runs out
    (about one ttl after the last refresh), not whenever Redis comes back."""
    client = connect(queue.redis_settings(own_redis.url))
    cancelled_after: list[float] = []
    await client.set(keys.binding_key(REF, keys.DIRTY), "1")

    async def slow() -> None:
        started = time.monotonic()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled_after.append(time.monotonic() - started)
            raise

    async def outage() -> None:
        await asyncio.sleep(0.1)
        await asyncio.to_thread(own_redis.stop)

    stopper = asyncio.create_task(outage())
    try:
        outcome = await queue.run_exclusive(client, REF, slow, lock_ttl_s=1.0)
    finally:
        await stopper
        await client.aclose()
    assert outcome.skipped == "lost"
    assert 0.8 < cancelled_after[0] < 1.6


async def test_an_error_after_the_lease_ran_out_reads_as_lost(pool: ArqRedis) -> None:
    """A worker woken from a long pause may first see its pending Redis read time out
    (StoreUnavailable) rather than its cancellation (found by test_crash_pause): once the
    lease is gone the run still ends "lost", putting back no mark and asking no retry."""
    await pool.set(keys.binding_key(REF, keys.DIRTY), "1")

    async def work() -> None:
        time.sleep(1.3)  # noqa: ASYNC251 - paused past the lease
        raise StoreUnavailable("redis unavailable during save_pair: Timeout reading")

    outcome = await queue.run_exclusive(pool, REF, work, lock_ttl_s=1.0)
    assert (outcome.ran, outcome.skipped) == (False, "lost")
    assert not await pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert await pool.exists(keys.binding_key(REF, keys.RUNNING))
