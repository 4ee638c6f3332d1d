"""The MappingStore contract, run against every implementation (memory, and real Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aredis

from syncd.errors import StoreError
from syncd.model import BindingRef, PairState, Side
from syncd.store import keys
from syncd.store.guard import awaited
from syncd.store.memory import MemoryStore
from syncd.store.redis import RedisStore
from syncd.sync.ports import ConflictRecord
from syncd.sync.records import DeadLetter, RunStatus
from tests.fakes import rich_event

Store = MemoryStore | RedisStore

SH = ZoneInfo("Asia/Shanghai")
REF = BindingRef("acme", "alice-work")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """Each implementation of the port, empty."""
    if request.param == "memory":
        yield MemoryStore()
        return
    client = aredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisStore(client)
    await client.aclose()


def pair(uid: str, dt: str | None = None, href: str | None = None, **kw: Any) -> PairState:
    """A pair with the given ids (defaults derived from the uid)."""
    return PairState(
        uid=uid,
        dingtalk_id=dt,
        caldav_href=href,
        dingtalk_fp=kw.get("dingtalk_fp"),
        caldav_fp=kw.get("caldav_fp"),
        caldav_etag=kw.get("caldav_etag"),
        base=kw.get("base"),
        origin=kw.get("origin", Side.DINGTALK),
        dingtalk_held=kw.get("dingtalk_held"),
        caldav_held=kw.get("caldav_held"),
    )


async def test_pairs_round_trip_with_base(store: Store) -> None:
    """A saved pair, base snapshot included, loads back equal with the same fingerprint."""
    base = rich_event()
    saved = pair(
        "u1",
        "dt1",
        "/cal/u1.ics",
        dingtalk_fp="a",
        caldav_fp="b",
        caldav_etag='"e1"',
        base=base,
        origin=Side.CALDAV,
    )
    await store.save_pair(REF, saved)
    await store.save_pair(REF, pair("u2", "dt2", None))
    loaded = await store.load_pairs(REF)
    assert loaded == {"u1": saved, "u2": pair("u2", "dt2", None)}
    assert loaded["u1"].base is not None
    assert loaded["u1"].base.fingerprint() == base.fingerprint()
    assert loaded["u1"].base.updated == base.updated


async def test_pairs_keep_what_each_side_held(store: Store) -> None:
    """The per-side snapshots of a lossy side (``*_held``) survive a save/load round trip."""
    base = rich_event()
    held = dataclasses.replace(base, summary="folded  title", description="")
    saved = pair("u1", "dt1", "/cal/u1.ics", base=base, dingtalk_held=held, caldav_held=None)
    await store.save_pair(REF, saved)
    loaded = (await store.load_pairs(REF))["u1"]
    assert loaded == saved
    assert loaded.dingtalk_held is not None
    assert loaded.dingtalk_held.fingerprint() == held.fingerprint()


async def test_empty_binding_has_nothing(store: Store) -> None:
    """A binding never written to has no pairs, cursors, conflicts, dead letters or status."""
    assert await store.load_pairs(REF) == {}
    assert await store.get_cursor(REF, Side.DINGTALK) is None
    assert await store.list_conflicts(REF) == []
    assert await store.list_dead_letters(REF) == []
    assert await store.get_status(REF) == RunStatus(state="never-run")
    assert await store.find_by_dingtalk_id(REF, "nope") is None


async def test_save_replaces_and_drop_forgets(store: Store) -> None:
    """Saving a uid again replaces the pair; dropping it removes pair and index entries."""
    await store.save_pair(REF, pair("u1", "dt1", "/h1", caldav_etag="1"))
    await store.save_pair(REF, pair("u1", "dt1", "/h1", caldav_etag="2"))
    assert (await store.load_pairs(REF))["u1"].caldav_etag == "2"
    await store.drop_pair(REF, "u1")
    await store.drop_pair(REF, "never-there")
    assert await store.load_pairs(REF) == {}
    assert await store.find_by_dingtalk_id(REF, "dt1") is None
    assert await store.find_by_href(REF, "/h1") is None


async def test_indexes_follow_id_changes(store: Store) -> None:
    """When a pair's ids change, the old index entries go and the new ones point at it."""
    await store.save_pair(REF, pair("u1", "dt1", "/h1"))
    found = await store.find_by_href(REF, "/h1")
    assert found is not None
    assert found.uid == "u1"
    await store.save_pair(REF, pair("u1", "dt2", None))
    assert await store.find_by_dingtalk_id(REF, "dt1") is None
    assert await store.find_by_href(REF, "/h1") is None
    moved = await store.find_by_dingtalk_id(REF, "dt2")
    assert moved is not None
    assert moved.uid == "u1"
    await store.save_pair(REF, pair("u1", "dt2", "/h2"))
    again = await store.find_by_href(REF, "/h2")
    assert again is not None
    assert again.dingtalk_id == "dt2"


async def test_claimed_id_is_not_unindexed_by_its_old_owner(store: Store) -> None:
    """An id taken over by another pair stays indexed to it when the old owner moves or goes."""
    await store.save_pair(REF, pair("a", "dt1", "/ha"))
    await store.save_pair(REF, pair("b", "dt1", "/hb"))
    await store.save_pair(REF, pair("a", "dt9", "/ha"))
    await store.drop_pair(REF, "a")
    owner = await store.find_by_dingtalk_id(REF, "dt1")
    assert owner is not None
    assert owner.uid == "b"


async def test_load_touched_reads_only_the_named_pairs(store: Store) -> None:
    """By DingTalk id, by href and by uid; unknown ids name nothing; the count is the total."""
    for i in range(6):
        await store.save_pair(REF, pair(f"u{i}", f"dt{i}", f"/h{i}", base=rich_event(f"u{i}")))
    got = await store.load_touched(
        REF, dingtalk_ids=["dt1", "dt-unknown"], hrefs=["/h2", "/nowhere"], uids=["u3", "u-x"]
    )
    assert (sorted(got.pairs), got.total) == (["u1", "u2", "u3"], 6)
    assert got.pairs["u2"] == pair("u2", "dt2", "/h2", base=rich_event("u2"))
    nothing = await store.load_touched(REF)
    assert (nothing.pairs, nothing.total) == ({}, 6)


async def test_load_touched_always_includes_pairs_lacking_a_side(store: Store) -> None:
    """A pair without a DingTalk id or href comes back whatever was asked."""
    for i in range(4):
        await store.save_pair(REF, pair(f"u{i}", f"dt{i}", f"/h{i}"))
    await store.save_pair(REF, pair("half-dt", None, "/only-dav"))
    await store.save_pair(REF, pair("half-dav", "dt-only", None))
    got = await store.load_touched(REF, dingtalk_ids=["dt0"])
    assert (sorted(got.pairs), got.total) == (["half-dav", "half-dt", "u0"], 6)
    await store.drop_pair(REF, "half-dt")
    await store.save_pair(REF, pair("half-dav", "dt-only", "/now-both"))
    again = await store.load_touched(REF, hrefs=["/h3"])
    assert (sorted(again.pairs), again.total) == (["u3"], 5)


async def test_some_hrefs_are_mapped_ones(store: Store) -> None:
    """Up to ``count`` distinct hrefs of the binding's pairs; none for an empty binding."""
    assert await store.some_hrefs(REF, 3) == []
    for i in range(5):
        await store.save_pair(REF, pair(f"u{i}", f"dt{i}", f"/h{i}"))
    await store.save_pair(REF, pair("half", "dt-only", None))
    await store.drop_pair(REF, "u4")
    some = await store.some_hrefs(REF, 3)
    assert len(some) == len(set(some)) == 3
    assert set(some) <= {"/h0", "/h1", "/h2", "/h3"}
    assert sorted(await store.some_hrefs(REF, 10)) == ["/h0", "/h1", "/h2", "/h3"]
    assert await store.some_hrefs(REF, 0) == []


async def test_load_touched_on_an_empty_binding(store: Store) -> None:
    """Nothing stored: nothing found, a count of zero."""
    got = await store.load_touched(REF, dingtalk_ids=["dt1"], hrefs=["/h"], uids=["u"])
    assert (got.pairs, got.total) == ({}, 0)


async def test_redis_load_touched_does_not_read_other_pairs(redis_url: str) -> None:
    """An incremental load reads through the indexes: a corrupt pair it was not asked about
    does not break it (a full read would), while asking for that pair reports it."""
    client = aredis.Redis.from_url(redis_url)
    store = RedisStore(client)
    try:
        await store.save_pair(REF, pair("u1", "dt1", "/h1"))
        await awaited(client.hset(keys.binding_key(REF, keys.PAIRS), "bad", "{not json"))
        await awaited(client.hset(keys.binding_key(REF, keys.BY_DINGTALK), "dt-bad", "bad"))
        await awaited(client.hset(keys.binding_key(REF, keys.BY_HREF), "/bad", "bad"))
        got = await store.load_touched(REF, dingtalk_ids=["dt1"])
        assert (list(got.pairs), got.total) == (["u1"], 2)
        with pytest.raises(StoreError, match="'bad' is corrupt"):
            await store.load_touched(REF, hrefs=["/bad"])
        with pytest.raises(StoreError, match="'bad' is corrupt"):
            await store.load_pairs(REF)
    finally:
        await client.aclose()


async def test_cursors_committed_together(store: Store) -> None:
    """Both cursors are set in one call; None clears one; an absent side is left alone."""
    await store.set_cursors(REF, {Side.DINGTALK: "dt-token-1", Side.CALDAV: "dav-token-1"})
    assert await store.get_cursor(REF, Side.DINGTALK) == "dt-token-1"
    assert await store.get_cursor(REF, Side.CALDAV) == "dav-token-1"
    await store.set_cursors(REF, {Side.DINGTALK: None})
    assert await store.get_cursor(REF, Side.DINGTALK) is None
    assert await store.get_cursor(REF, Side.CALDAV) == "dav-token-1"
    await store.set_cursors(REF, {Side.DINGTALK: "dt-2", Side.CALDAV: None})
    assert await store.get_cursor(REF, Side.DINGTALK) == "dt-2"
    assert await store.get_cursor(REF, Side.CALDAV) is None


async def test_conflicts_kept_in_order_with_both_versions(store: Store) -> None:
    """Recorded conflicts read back equal, with both versions and the base, oldest first."""
    first = ConflictRecord(
        "u1",
        ("summary",),
        rich_event(summary="DT"),
        rich_event(summary="DAV"),
        rich_event(),
        Side.DINGTALK,
        "2025-03-01T08:00:00Z",
    )
    second = ConflictRecord(
        "u2",
        ("location", "summary"),
        rich_event("u2", "x"),
        rich_event("u2", "y"),
        None,
        Side.CALDAV,
        "2025-03-01T09:00:00Z",
    )
    await store.add_conflict(REF, first)
    await store.add_conflict(REF, second)
    assert await store.list_conflicts(REF) == [first, second]


def item(uid: str, error: str = "InvalidRequest", **more: Any) -> DeadLetter:
    """An item-level dead letter of ``uid``."""
    return DeadLetter("item", error, "2025-03-01T08:00:00+00:00", uid=uid, **more)


def of_binding(error: str) -> DeadLetter:
    """A binding-level dead letter."""
    return DeadLetter("binding", error, "2025-03-01T08:00:00+00:00", reason="poll", tries=5)


async def test_dead_letters_add_list_clear(store: Store) -> None:
    """Dead letters of both kinds come back in order, equal to what was added, and clear."""
    first = item("u1", side="dingtalk", action="create u1", message="boom")
    second = DeadLetter.of_binding("callback", ValueError("no"), 3, str(datetime(2025, 3, 1)))
    await store.add_dead_letter(REF, first)
    await store.add_dead_letter(REF, second)
    assert await store.list_dead_letters(REF) == [first, second]
    assert second.error == "ValueError: no"
    assert (first.reason_line(), second.reason_line()) == ("u1: InvalidRequest: boom", second.error)
    await store.clear_dead_letters(REF)
    assert await store.list_dead_letters(REF) == []


async def test_clearing_what_was_read_keeps_later_dead_letters(store: Store) -> None:
    """A replay clears the letters it read; one added in between survives."""
    await store.add_dead_letter(REF, item("u1"))
    await store.add_dead_letter(REF, item("u2"))
    read = await store.list_dead_letters(REF)
    await store.add_dead_letter(REF, item("u3"))  # arrives while the replay runs
    await store.clear_dead_letters(REF, len(read))
    assert await store.list_dead_letters(REF) == [item("u3")]


async def test_resolving_dead_letters_removes_only_what_was_healed(store: Store) -> None:
    """Binding-level letters (no uid) go only with ``binding``; item letters by their uid,
    every copy of them; the rest stay in order and the removed ones are returned."""
    await store.add_dead_letter(REF, of_binding("NotFound: 404"))
    await store.add_dead_letter(REF, item("u1"))
    await store.add_dead_letter(REF, item("u2"))
    await store.add_dead_letter(REF, item("u2"))
    await store.add_dead_letter(REF, of_binding("SourceUnavailable: x"))
    assert await store.resolve_dead_letters(REF, binding=False) == []
    assert await store.resolve_dead_letters(REF, binding=False, uids=["u9"]) == []
    gone = await store.resolve_dead_letters(REF, binding=False, uids=["u2"])
    assert [g.uid for g in gone] == ["u2", "u2"]
    gone = await store.resolve_dead_letters(REF, binding=True)
    assert [g.error for g in gone] == ["NotFound: 404", "SourceUnavailable: x"]
    assert await store.list_dead_letters(REF) == [item("u1")]
    other = BindingRef("acme", "bob-work")
    await store.add_dead_letter(other, of_binding("boom"))
    await store.resolve_dead_letters(REF, binding=True, uids=["u1"])
    assert await store.list_dead_letters(REF) == []
    assert await store.list_dead_letters(other) == [of_binding("boom")]  # per binding


async def test_status_merges_fields(store: Store) -> None:
    """set_status replaces the fields a run sets and keeps the others (last success survives)."""
    await store.set_status(
        REF,
        RunStatus(
            state="ok",
            last_success="2025-03-01T08:00:00Z",
            counts={"created": 2},
            errors=(),
            held_deletions=("delete x",),
        ),
    )
    await store.set_status(REF, RunStatus(state="failed", last_error="SourceUnavailable: 503"))
    assert await store.get_status(REF) == RunStatus(
        state="failed",
        last_success="2025-03-01T08:00:00Z",
        last_error="SourceUnavailable: 503",
        counts={"created": 2},
        errors=(),
        held_deletions=("delete x",),
    )


async def _fill(store: Store, ref: BindingRef, tag: str) -> None:
    await store.save_pair(ref, pair("same-uid", f"dt-{tag}", f"/{tag}.ics"))
    await store.set_cursors(ref, {Side.DINGTALK: f"c-{tag}", Side.CALDAV: f"d-{tag}"})
    await store.add_conflict(
        ref,
        ConflictRecord(
            "same-uid", ("summary",), rich_event(), rich_event(), None, Side.CALDAV, tag
        ),
    )
    await store.add_dead_letter(ref, item(tag))
    await store.set_status(ref, RunStatus(state="ok", last_error=tag))


async def _contents(store: Store, ref: BindingRef) -> tuple[Any, ...]:
    return (
        await store.load_pairs(ref),
        await store.get_cursor(ref, Side.DINGTALK),
        await store.get_cursor(ref, Side.CALDAV),
        [c.decided_at for c in await store.list_conflicts(ref)],
        await store.list_dead_letters(ref),
        await store.get_status(ref),
    )


async def test_wipe_forgets_one_binding_only(store: Store) -> None:
    """wipe empties the binding entirely and leaves a sibling binding untouched."""
    other = BindingRef("acme", "alice-holidays")
    await _fill(store, REF, "a")
    await _fill(store, other, "b")
    before = await _contents(store, other)
    await store.wipe(REF)
    assert await _contents(store, REF) == ({}, None, None, [], [], RunStatus())
    assert await store.find_by_dingtalk_id(REF, "dt-a") is None
    assert await _contents(store, other) == before


@pytest.mark.parametrize(
    ("one", "two"),
    [
        (BindingRef("acme", "work"), BindingRef("globex", "work")),
        (BindingRef("acme", "work"), BindingRef("acme", "home")),
        (BindingRef("a:b", "c"), BindingRef("a", "b:c")),
        (BindingRef("acme", "push"), BindingRef("acme", "binding")),
    ],
)
async def test_tenants_and_bindings_are_isolated(
    store: Store, one: BindingRef, two: BindingRef
) -> None:
    """Identical uids and ids under two tenants or bindings never see each other."""
    await _fill(store, one, "one")
    await _fill(store, two, "two")
    pairs_one, pairs_two = await store.load_pairs(one), await store.load_pairs(two)
    assert pairs_one["same-uid"].dingtalk_id == "dt-one"
    assert pairs_two["same-uid"].dingtalk_id == "dt-two"
    assert await store.find_by_dingtalk_id(one, "dt-two") is None
    assert await store.get_status(two) == RunStatus(state="ok", last_error="two")
    await store.drop_pair(one, "same-uid")
    assert "same-uid" in await store.load_pairs(two)


async def test_concurrent_saves_leave_consistent_indexes(store: Store) -> None:
    """Many tasks re-saving and dropping the same uids with changing ids leave exact indexes."""
    uids = [f"u{i}" for i in range(8)]
    used: set[tuple[str, str]] = set()

    async def writer(task: int) -> None:
        rnd = random.Random(task)
        for step in range(40):
            uid = rnd.choice(uids)
            if rnd.random() < 0.15:
                await store.drop_pair(REF, uid)
                continue
            dt, href = f"dt-{uid}-{task}-{step}", f"/{uid}/{task}/{step}.ics"
            used.update({("dt", dt), ("href", href)})
            await store.save_pair(REF, pair(uid, dt, href if step % 3 else None))

    await asyncio.gather(*(writer(t) for t in range(24)))
    pairs = await store.load_pairs(REF)
    for kind, item_id in used:
        find = store.find_by_dingtalk_id if kind == "dt" else store.find_by_href
        found = await find(REF, item_id)
        owner = [p for p in pairs.values() if item_id in (p.dingtalk_id, p.caldav_href)]
        assert (found is None) == (not owner), (kind, item_id)
        if found is not None:
            assert found == owner[0]
