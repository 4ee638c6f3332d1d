"""Redis-store specifics beyond the shared contract: key layout, round trips, bad data, outages."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aredis
from structlog.testing import capture_logs

from syncd.errors import StoreError, StoreUnavailable
from syncd.model import BindingRef, PairState, Side
from syncd.store import keys
from syncd.store.codec import pair_to_json
from syncd.store.redis import RedisStore
from syncd_lab.stack.ports import free_port
from tests.contract.test_store_contract import rich_event

REF = BindingRef("acme", "alice-work")


def _pair(i: int) -> PairState:
    return PairState(
        f"uid-{i}", f"dt-{i}", f"/cal/{i}.ics", "fp-a", "fp-b", f'"{i}"', rich_event(f"uid-{i}")
    )


async def _calls(client: aredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_keys_live_under_the_binding_namespace(redis_client: aredis.Redis) -> None:
    """All store keys sit under syncd:<tenant>:binding:<binding>:, ids percent-encoded."""
    store = RedisStore(redis_client)
    odd = BindingRef("ac:me", "bob work")
    await store.save_pair(odd, _pair(1))
    await store.set_cursors(odd, {Side.CALDAV: "t"})
    await store.set_status(odd, {"state": "ok"})
    found = sorted(k.decode() for k in await redis_client.keys("*"))
    assert found == [
        "syncd:ac%3Ame:binding:bob%20work:by_dav",
        "syncd:ac%3Ame:binding:bob%20work:by_dt",
        "syncd:ac%3Ame:binding:bob%20work:cursor",
        "syncd:ac%3Ame:binding:bob%20work:pairs",
        "syncd:ac%3Ame:binding:bob%20work:status",
    ]


async def test_load_of_10000_pairs_is_one_hgetall(redis_client: aredis.Redis) -> None:
    """load_pairs reads 10,000 pairs with a single HGETALL (no per-pair round trips), quickly."""
    store = RedisStore(redis_client)
    blobs = {}
    for i in range(10_000):
        blobs[f"uid-{i}"] = pair_to_json(_pair(i))
    await redis_client.hset(keys.binding_key(REF, keys.PAIRS), mapping=blobs)
    await redis_client.config_resetstat()
    started = time.perf_counter()
    pairs = await store.load_pairs(REF)
    elapsed = time.perf_counter() - started
    calls = await _calls(redis_client)
    assert len(pairs) == 10_000
    assert pairs["uid-9999"] == _pair(9999)
    assert calls.get("hgetall") == 1
    assert "hget" not in calls
    assert elapsed < 5.0, f"load_pairs took {elapsed:.2f}s"


async def test_corrupt_pair_is_a_one_line_store_error(redis_client: aredis.Redis) -> None:
    """A pair entry that is not valid JSON makes load_pairs raise StoreError naming the uid."""
    store = RedisStore(redis_client)
    await store.save_pair(REF, _pair(1))
    await redis_client.hset(keys.binding_key(REF, keys.PAIRS), "uid-bad", "{not json")
    with capture_logs() as logs, pytest.raises(StoreError, match="uid-bad") as info:
        await store.load_pairs(REF)
    assert "\n" not in str(info.value)
    assert any(e["event"] == "store_pair_corrupt" for e in logs)


async def test_corrupt_conflict_is_skipped_and_logged(redis_client: aredis.Redis) -> None:
    """One unreadable conflict entry is logged and skipped; the readable ones are listed."""
    store = RedisStore(redis_client)
    await redis_client.rpush(keys.binding_key(REF, keys.CONFLICTS), '{"uid": 1}')
    await redis_client.rpush(keys.binding_key(REF, keys.DEAD_LETTERS), "nope", '{"a": 1}')
    with capture_logs() as logs:
        assert await store.list_conflicts(REF) == []
        assert await store.list_dead_letters(REF) == [{"a": 1}]
    events = {e["event"] for e in logs}
    assert {"store_conflict_corrupt", "store_dead_letter_corrupt"} <= events


async def test_wipe_keeps_queue_state(redis_client: aredis.Redis) -> None:
    """wipe removes the store's keys but not the dirty mark, generation or lock of a binding."""
    store = RedisStore(redis_client)
    await store.save_pair(REF, _pair(1))
    for name in (keys.DIRTY, keys.GENERATION, keys.LOCK):
        await redis_client.set(keys.binding_key(REF, name), "1")
    await store.wipe(REF)
    left = sorted(k.decode().rsplit(":", 1)[1] for k in await redis_client.keys("*"))
    assert left == ["dirty", "gen", "lock"]


async def test_unreachable_redis_is_store_unavailable() -> None:
    """With nothing listening, every operation raises the retryable StoreUnavailable."""
    client = aredis.Redis(port=free_port(), socket_connect_timeout=1)
    store = RedisStore(client)
    try:
        with pytest.raises(StoreUnavailable, match="load_pairs") as info:
            await store.load_pairs(REF)
        assert isinstance(info.value.__cause__, Exception)
        with pytest.raises(StoreUnavailable, match="save_pair"):
            await store.save_pair(REF, _pair(1))
    finally:
        await client.aclose()


async def test_wrong_key_type_is_store_error(redis_client: aredis.Redis) -> None:
    """A non-connection Redis error (WRONGTYPE) becomes StoreError, not StoreUnavailable."""
    await redis_client.set(keys.binding_key(REF, keys.PAIRS), "a string, not a hash")
    with pytest.raises(StoreError) as info:
        await RedisStore(redis_client).load_pairs(REF)
    assert not isinstance(info.value, StoreUnavailable)
