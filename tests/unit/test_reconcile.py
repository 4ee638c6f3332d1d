"""The reconcile runner end to end over two in-memory sides and the in-memory store."""

from __future__ import annotations

import dataclasses

import pytest

from syncd.model import BindingRef, Side
from syncd.reconcile import _runner, reconcile
from syncd.sync import Policy
from tests.fakes import REF, MemorySide, World, ev, new_world, summaries


@pytest.fixture
def world() -> World:
    """Empty DingTalk-like and CalDAV-like sides sharing one clock, and an empty store."""
    return new_world()


async def test_first_run_copies_both_ways_and_the_next_run_is_a_no_op(world: World) -> None:
    """Scenarios 1/2: each new event is copied once; the echo of those writes writes nothing."""
    world.dingtalk.user_create(ev("x", summary="From DingTalk"))
    world.caldav.user_create(ev("cal-1", summary="From CalDAV"))
    report = await world.sync()
    assert (report.counts.created, report.cursors_committed) == (2, True)
    assert report.per_side[Side.CALDAV].created == report.per_side[Side.DINGTALK].created == 1
    assert summaries(world.dingtalk) == summaries(world.caldav) == ["From CalDAV", "From DingTalk"]
    assert len(await world.store.load_pairs(REF)) == 2
    world.reset_counts()
    again = await world.sync()
    assert (world.writes(), again.counts.created, again.counts.updated) == (0, 0, 0)


async def test_edit_propagates_once_and_its_echo_does_not_come_back(world: World) -> None:
    """A DingTalk edit updates CalDAV once; later runs write nothing."""
    dt = world.dingtalk.user_create(ev(summary="v1"))
    await world.sync()
    world.dingtalk.user_update(dt, summary="v2")
    world.reset_counts()
    report = await world.sync()
    assert (report.counts.updated, world.caldav.calls["update"], world.dingtalk.writes) == (1, 1, 0)
    assert summaries(world.caldav) == ["v2"]
    world.reset_counts()
    await world.sync()
    await world.sync()
    assert world.writes() == 0


async def test_server_rewrite_without_content_change_writes_nothing(world: World) -> None:
    """A new etag with the same canonical content causes no write either way."""
    world.dingtalk.user_create(ev(summary="s"))
    await world.sync()
    (href,) = world.caldav.items
    world.caldav.user_touch(href)
    world.reset_counts()
    report = await world.sync()
    assert (world.writes(), report.counts.updated) == (0, 0)
    (pair,) = (await world.store.load_pairs(REF)).values()
    assert pair.caldav_etag == world.caldav.items[href].etag  # refreshed, so writes stay valid


async def test_lossy_side_normalization_does_not_loop(world: World) -> None:
    """A side that rewrites what it stores is not read as a foreign change."""
    world.caldav.normalize = lambda e: dataclasses.replace(e, summary=e.summary.upper())
    world.dingtalk.user_create(ev(summary="quiet"))
    await world.sync()
    assert summaries(world.caldav) == ["QUIET"]
    world.reset_counts()
    for _ in range(3):
        await world.sync()
    assert world.writes() == 0
    assert summaries(world.dingtalk) == ["quiet"]


async def test_stale_cursor_falls_back_to_a_full_listing_without_duplicates(world: World) -> None:
    """SyncTokenInvalid makes the run re-list in full; nothing is duplicated."""
    world.dingtalk.user_create(ev(summary="a"))
    await world.sync()
    world.dingtalk.expire_cursors()
    world.caldav.expire_cursors()
    world.dingtalk.user_create(ev(summary="b"))
    world.reset_counts()
    report = await world.sync()
    assert report.full is True
    assert (report.counts.created, world.writes()) == (1, 1)
    assert world.dingtalk.calls["changes"] == 2  # the stale try, then the full listing
    assert summaries(world.caldav) == ["a", "b"]


async def test_moved_href_is_not_deleted_and_recreated(world: World) -> None:
    """A renamed href with the same UID repoints the pair with zero writes."""
    world.dingtalk.user_create(ev(summary="m"))
    await world.sync()
    (href,) = world.caldav.items
    world.caldav.user_move(href, "renamed.ics")
    world.reset_counts()
    await world.sync()
    assert world.writes() == 0
    (pair,) = (await world.store.load_pairs(REF)).values()
    assert pair.caldav_href == "renamed.ics"


async def test_lost_store_full_reconcile_creates_no_duplicates(world: World) -> None:
    """After wiping the store, a full run re-pairs everything and writes nothing."""
    for i in range(5):
        world.dingtalk.user_create(ev(summary=f"d{i}"))
        world.caldav.user_create(ev(f"c{i}", summary=f"c{i}"))
    await world.sync()
    await world.store.wipe(REF)
    world.reset_counts()
    report = await world.sync(full=True)
    assert (world.writes(), report.counts.conflicts) == (0, 0)
    assert len(world.dingtalk.items) == len(world.caldav.items) == 10
    assert len(await world.store.load_pairs(REF)) == 10


async def test_delete_propagates_and_a_full_resync_does_not_resurrect(world: World) -> None:
    """A DingTalk deletion deletes the CalDAV copy; a later full run keeps it gone."""
    dt = world.dingtalk.user_create(ev(summary="bye"))
    await world.sync()
    world.dingtalk.user_delete(dt)
    report = await world.sync()
    assert (report.counts.deleted, world.caldav.items) == (1, {})
    assert await world.store.load_pairs(REF) == {}
    await world.sync(full=True)
    assert (world.dingtalk.items, world.caldav.items) == ({}, {})


async def test_edit_wins_over_delete_and_repoints_the_pair(world: World) -> None:
    """Deleted in DingTalk, edited in CalDAV: DingTalk gets a new copy."""
    dt = world.dingtalk.user_create(ev(summary="orig"))
    await world.sync()
    (href,) = world.caldav.items
    world.dingtalk.user_delete(dt)
    world.caldav.user_update(href, summary="edited")
    report = await world.sync()
    assert report.per_side[Side.DINGTALK].created == 1
    assert summaries(world.dingtalk) == ["edited"]
    (pair,) = (await world.store.load_pairs(REF)).values()
    assert pair.dingtalk_id != dt
    assert pair.dingtalk_id in world.dingtalk.items


async def test_conflict_is_recorded_with_both_versions(world: World) -> None:
    """A both-sides edit of one field is decided and stored as a conflict."""
    dt = world.dingtalk.user_create(ev(summary="base"))
    await world.sync()
    (href,) = world.caldav.items
    world.dingtalk.user_update(dt, summary="dingtalk")
    world.caldav.user_update(href, summary="caldav")  # later on the shared clock: newest wins
    report = await world.sync()
    assert report.counts.conflicts == 1
    (record,) = await world.store.list_conflicts(REF)
    assert (record.dingtalk.summary, record.caldav.summary, record.winner) == (
        "dingtalk",
        "caldav",
        Side.CALDAV,
    )
    assert summaries(world.dingtalk) == summaries(world.caldav) == ["caldav"]


async def test_two_bindings_sharing_uids_stay_isolated(world: World) -> None:
    """The same UIDs in two bindings keep separate pairs and cursors."""
    other = BindingRef("other", "bob")
    d2, c2 = MemorySide(Side.DINGTALK), MemorySide(Side.CALDAV)
    for side in (world.caldav, c2):
        side.user_create(ev("shared-invite", summary="All hands"))
    await world.sync()
    await reconcile(other, d2, c2, world.store, Policy())
    (p1,) = (await world.store.load_pairs(REF)).values()
    (p2,) = (await world.store.load_pairs(other)).values()
    assert p1.uid == p2.uid == "shared-invite"
    assert p1.dingtalk_id in world.dingtalk.items
    assert p2.dingtalk_id in d2.items


async def test_a_field_a_side_rewrites_is_not_mistaken_for_its_edit(world: World) -> None:
    """A title CalDAV folded on write is not a CalDAV edit: DingTalk's later title edit wins."""
    world.caldav.normalize = lambda e: dataclasses.replace(e, summary=" ".join(e.summary.split()))
    dt = world.dingtalk.user_create(ev(summary="a  b"))
    await world.sync()
    (href,) = world.caldav.items
    world.dingtalk.user_update(dt, summary="renamed")
    world.caldav.user_update(href, location="Room 5")  # later, so CalDAV would win a conflict
    report = await world.sync()
    assert report.counts.conflicts == 0
    for side in (world.dingtalk, world.caldav):
        (event,) = side.events().values()
        assert (event.summary, event.location) == ("renamed", "Room 5")


async def test_a_field_the_source_cannot_hold_survives_its_edit(world: World) -> None:
    """DingTalk cannot keep the description: its title edit must not wipe CalDAV's notes."""
    world.dingtalk.normalize = lambda e: dataclasses.replace(e, description="")
    world.caldav.user_create(ev("cal-1", summary="Review", description="agenda: 1, 2, 3"))
    await world.sync()
    (dt,) = world.dingtalk.items
    assert world.dingtalk.events()[dt].description == ""
    world.dingtalk.user_update(dt, summary="Review (moved)")
    world.reset_counts()
    await world.sync()
    (event,) = world.caldav.events().values()
    assert (event.summary, event.description) == ("Review (moved)", "agenda: 1, 2, 3")
    assert world.writes() == 1
    world.reset_counts()
    await world.sync()
    assert world.writes() == 0


async def test_a_full_run_returns_freed_heap_pages_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a full listing is read (parse trees freed), before the pairs are decoded."""
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(_runner, "release_freed", release)
    world.dingtalk.user_create(ev(summary="a"))
    await world.sync()  # first run: full listings
    assert calls == [1]
    await world.sync()  # incremental
    assert calls == [1]
    await world.sync(full=True)
    assert calls == [1, 1]
