"""Pairs stored by an older syncd (codec version 1) stay readable and writable in place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aredis

from syncd.model import Event, PairState, Side
from syncd.store import keys
from syncd.store.codec import pair_from_json, pair_to_json
from syncd.store.guard import awaited
from syncd.store.redis import RedisStore
from tests.contract.test_store_contract import REF, pair, rich_event

UTC = ZoneInfo("UTC")

# A pair exactly as syncd 0.x (codec version 1) wrote it, taken from a benchmark's Redis.
V1 = (
    '{"base":{"attendees":[],"description":"Agenda item 2","end":"2026-12-04T03:00:00[UTC]",'
    '"free_busy":"busy","location":"Room 2","online_meeting_url":null,"organizer":null,'
    '"overrides":[],"privacy":"public","recurrence":null,"recurrence_id":null,"reminders":[],'
    '"start":"2026-12-04T02:00:00[UTC]","status":"confirmed","summary":"Bench meeting 2",'
    '"uid":"bench-00002@client.example","updated":"2026-01-01T00:00:00[UTC]"},'
    '"caldav_etag":"\\"6b7d\\"","caldav_fp":"3a54","caldav_held":null,'
    '"caldav_href":"/syncd/cal-b2/bench-00002@client.example.ics",'
    '"dingtalk_etag":"2026-12-03T08:50:43.360Z","dingtalk_fp":"11aa","dingtalk_held":'
    '{"attendees":[],"description":"Agenda item 2","end":"2026-12-04T03:00:00[UTC]",'
    '"free_busy":"busy","location":"Room 2","online_meeting_url":null,'
    '"organizer":"alice@acme.example","overrides":[],"privacy":"public","recurrence":null,'
    '"recurrence_id":null,"reminders":[],"start":"2026-12-04T02:00:00[UTC]",'
    '"status":"confirmed","summary":"Bench meeting 2","uid":"bench-00002@client.example",'
    '"updated":"2026-12-03T08:50:43.360000[UTC]"},"dingtalk_id":"6EfHA","origin":"caldav",'
    '"uid":"bench-00002@client.example"}'
)
UID = "bench-00002@client.example"
HREF = "/syncd/cal-b2/bench-00002@client.example.ics"


def _expected() -> PairState:
    base = Event(
        uid=UID,
        summary="Bench meeting 2",
        start=datetime(2026, 12, 4, 2, 0, tzinfo=UTC),
        end=datetime(2026, 12, 4, 3, 0, tzinfo=UTC),
        description="Agenda item 2",
        location="Room 2",
        updated=datetime(2026, 1, 1, tzinfo=UTC),
    )
    held = Event(
        uid=UID,
        summary="Bench meeting 2",
        start=base.start,
        end=base.end,
        description="Agenda item 2",
        location="Room 2",
        organizer="alice@acme.example",
        updated=datetime(2026, 12, 3, 8, 50, 43, 360000, tzinfo=UTC),
    )
    return PairState(
        uid=UID,
        dingtalk_id="6EfHA",
        caldav_href=HREF,
        dingtalk_fp="11aa",
        caldav_fp="3a54",
        caldav_etag='"6b7d"',
        base=base,
        origin=Side.CALDAV,
        dingtalk_held=held,
        dingtalk_etag="2026-12-03T08:50:43.360Z",
    )


def test_version_1_text_reads_back_whole() -> None:
    """Every field of an old pair, including the held event's ``updated`` (not compared)."""
    got = pair_from_json(V1)
    assert got == _expected()
    assert got.base is not None
    assert got.dingtalk_held is not None
    assert (got.base.updated, got.dingtalk_held.updated) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 3, 8, 50, 43, 360000, tzinfo=UTC),
    )


def test_version_2_is_smaller_and_reads_back_equal() -> None:
    """Rewritten in version 2 the pair is less than half the size and decodes equal."""
    old = pair_from_json(V1)
    text = pair_to_json(old)
    assert json.loads(text)["v"] == 2
    assert len(text) < len(V1) / 2
    again = pair_from_json(text)
    assert again == old
    assert again.dingtalk_held is not None
    assert old.dingtalk_held is not None
    assert again.dingtalk_held.updated == old.dingtalk_held.updated


def test_version_2_keeps_non_default_fields_and_foreign_uids() -> None:
    """A base whose uid differs from the pair's, held events without a base, all-day dates."""
    odd = Event(uid="other-uid", summary="x", start=date(2025, 1, 1), end=date(2025, 1, 2))
    for p in (
        pair("u1", "dt1", "/h1", base=rich_event("u1"), caldav_held=rich_event("u1", "C")),
        pair("u2", None, "/h2", base=odd, dingtalk_held=rich_event("u2")),
        pair("u3", "dt3", None, dingtalk_held=odd),
    ):
        assert pair_from_json(pair_to_json(p)) == p


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[tuple[RedisStore, aredis.Redis]]:
    client = aredis.Redis.from_url(redis_url)
    yield RedisStore(client), client
    await client.aclose()


async def _write_v1(client: aredis.Redis) -> None:
    """What an older syncd left in Redis: the pair and its two index entries."""
    await awaited(client.hset(keys.binding_key(REF, keys.PAIRS), UID, V1))
    await awaited(client.hset(keys.binding_key(REF, keys.BY_DINGTALK), "6EfHA", UID))
    await awaited(client.hset(keys.binding_key(REF, keys.BY_HREF), HREF, UID))


async def test_redis_reads_old_pairs_in_place(store: tuple[RedisStore, aredis.Redis]) -> None:
    """load_pairs, load_touched and the finders read a version-1 pair."""
    redis_store, client = store
    await _write_v1(client)
    assert await redis_store.load_pairs(REF) == {UID: _expected()}
    touched = await redis_store.load_touched(REF, hrefs=[HREF])
    assert (touched.pairs, touched.total) == ({UID: _expected()}, 1)
    assert await redis_store.find_by_dingtalk_id(REF, "6EfHA") == _expected()


async def test_redis_moves_and_drops_old_pairs(store: tuple[RedisStore, aredis.Redis]) -> None:
    """Saving over a version-1 pair moves its index entries (the script reads the old ids);
    dropping one removes them."""
    redis_store, client = store
    await _write_v1(client)
    await redis_store.save_pair(REF, pair(UID, "dt-new", "/new"))
    assert await redis_store.find_by_dingtalk_id(REF, "6EfHA") is None
    assert await redis_store.find_by_href(REF, HREF) is None
    assert await redis_store.find_by_href(REF, "/new") == pair(UID, "dt-new", "/new")
    await awaited(client.hset(keys.binding_key(REF, keys.PAIRS), UID, V1))
    await awaited(client.hset(keys.binding_key(REF, keys.BY_HREF), HREF, UID))
    await redis_store.drop_pair(REF, UID)
    assert (
        await awaited(client.hlen(keys.binding_key(REF, keys.BY_HREF))) == 1
    )  # "/new": not ours now
    assert await redis_store.find_by_href(REF, HREF) is None
    assert await redis_store.load_pairs(REF) == {}


async def test_redis_drops_a_new_pair_lacking_a_dingtalk_id(
    store: tuple[RedisStore, aredis.Redis],
) -> None:
    """Version 2 leaves an absent id out: dropping the pair still removes its href entry."""
    redis_store, client = store
    await redis_store.save_pair(REF, pair("u1", None, "/h1"))
    await redis_store.drop_pair(REF, "u1")
    assert await awaited(client.hlen(keys.binding_key(REF, keys.BY_HREF))) == 0
