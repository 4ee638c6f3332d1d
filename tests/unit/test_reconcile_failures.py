"""The runner under failures, safety holds and dry runs: what is written, what cursors do."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from syncd.errors import (
    AuthFailed,
    EtagMismatch,
    PermissionDenied,
    SourceEmptied,
    SourceUnavailable,
    StoreUnavailable,
    Unrepresentable,
)
from syncd.model import BindingRef, PairState, Side
from syncd.observability import bound_to_binding
from syncd.reconcile import disposition, reconcile
from syncd.store.memory import MemoryStore
from syncd.sync import Policy
from syncd.sync.records import RunStatus
from tests.fakes import REF, MemorySide, World, ev, new_world, summaries


@pytest.fixture
def world() -> World:
    """Empty DingTalk-like and CalDAV-like sides sharing one clock, and an empty store."""
    return new_world()


async def _cursors(w: World) -> tuple[str | None, str | None]:
    return (
        await w.store.get_cursor(REF, Side.DINGTALK),
        await w.store.get_cursor(REF, Side.CALDAV),
    )


async def test_dry_run_reports_the_plan_and_writes_nothing(world: World) -> None:
    """--dry-run plans creates, writes no item, no pair, no cursor, no status."""
    world.dingtalk.user_create(ev(summary="a"))
    world.caldav.user_create(ev("c", summary="b"))
    report = await world.sync(dry_run=True)
    assert report.dry_run is True
    assert report.counts.created == 2
    assert [line.split(":")[0] for line in report.plan.describe()] == [
        "create caldav",
        "create dingtalk",
    ]
    assert world.writes() == 0
    assert await world.store.load_pairs(REF) == {}
    assert await _cursors(world) == (None, None)
    assert await world.store.get_status(REF) == RunStatus()


async def test_retryable_failure_skips_one_pair_holds_cursors_and_retries_cleanly(
    world: World,
) -> None:
    """One failing write does not stop the others; cursors stay; the next run finishes it."""
    for name in ("a", "b", "c"):
        world.dingtalk.user_create(ev(summary=name))
    world.caldav.fail("create", SourceUnavailable("503"))
    report = await world.sync()
    assert (report.counts.created, len(report.errors), report.retryable) == (2, 1, True)
    assert report.errors[0].error == "SourceUnavailable"
    assert (report.cursors_committed, await _cursors(world)) == (False, (None, None))
    assert (await world.store.get_status(REF)).state == "partial"
    world.reset_counts()
    second = await world.sync()
    assert (second.counts.created, world.writes(), second.cursors_committed) == (1, 1, True)
    assert summaries(world.caldav) == ["a", "b", "c"]


async def test_etag_mismatch_leaves_the_pair_and_the_next_run_merges(world: World) -> None:
    """If-Match lost a race: nothing stored, the next run re-reads and re-decides."""
    dt = world.dingtalk.user_create(ev(summary="v1"))
    await world.sync()
    before = await world.store.load_pairs(REF)
    (href,) = world.caldav.items
    world.dingtalk.user_update(dt, description="from dingtalk")
    world.caldav.fail("update", EtagMismatch("412"))
    report = await world.sync()
    assert (report.errors[0].disposition, report.cursors_committed) == ("reread", False)
    assert await world.store.load_pairs(REF) == before
    world.caldav.user_update(href, location="from caldav")  # the edit that won the race
    await world.sync()
    for side in (world.dingtalk, world.caldav):
        (event,) = side.events().values()
        assert (event.description, event.location) == ("from dingtalk", "from caldav")


async def test_untranslatable_write_is_dead_lettered_and_cursors_advance(world: World) -> None:
    """An item the other side cannot hold is dead-lettered; it does not pin the cursors."""
    world.dingtalk.user_create(ev(summary="ok"))
    world.caldav.user_create(ev("weird", summary="weird"))
    world.dingtalk.fail("create", Unrepresentable("rrule not expressible"))
    report = await world.sync()
    assert (report.counts.created, report.cursors_committed) == (1, True)
    (letter,) = await world.store.list_dead_letters(REF)
    assert (letter.error, letter.side, letter.disposition) == (
        "Unrepresentable",
        "dingtalk",
        "dead_letter",
    )
    assert letter.message == "rrule not expressible"


async def test_auth_failure_on_write_holds_cursors_without_a_dead_letter(world: World) -> None:
    """A side refusing our credentials is not the item's fault: re-read later, no dead letter."""
    world.dingtalk.user_create(ev(summary="x"))
    world.caldav.fail("create", AuthFailed("401"))
    report = await world.sync()
    assert (report.errors[0].disposition, report.cursors_committed) == ("reread", False)
    assert await world.store.list_dead_letters(REF) == []


async def test_read_failure_raises_and_records_a_failed_status(world: World) -> None:
    """A side that cannot be read fails the run (retryable), writes nothing, notes the error."""
    world.caldav.user_create(ev("c", summary="c"))
    world.dingtalk.fail("changes", SourceUnavailable("timeout"))
    with pytest.raises(SourceUnavailable):
        await world.sync()
    assert world.writes() == 0
    status = await world.store.get_status(REF)
    assert (status.state, status.last_error) == ("failed", "SourceUnavailable: timeout")


async def test_emptied_source_blocks_the_run_and_deletes_nothing(world: World) -> None:
    """A full listing suddenly empty raises SourceEmptied; CalDAV keeps everything."""
    for i in range(3):
        world.dingtalk.user_create(ev(summary=str(i)))
    await world.sync()
    world.dingtalk.items.clear()  # the glitch: the server lists nothing (no change log)
    with pytest.raises(SourceEmptied):
        await world.sync(full=True)
    assert len(world.caldav.items) == 3
    assert (await world.store.get_status(REF)).state == "blocked"


async def test_held_deletions_are_reported_not_executed_and_pin_the_cursors(world: World) -> None:
    """Mass deletions are held, reported in status, re-held each run until forced."""
    ids = [world.dingtalk.user_create(ev(summary=str(i))) for i in range(30)]
    await world.sync()
    cursors = await _cursors(world)
    for item_id in ids[:25]:
        world.dingtalk.user_delete(item_id)
    world.dingtalk.user_update(ids[29], summary="still synced")
    report = await world.sync()
    assert (len(report.held_deletions), report.counts.deleted, report.counts.updated) == (25, 0, 1)
    assert (report.cursors_committed, await _cursors(world)) == (False, cursors)
    status = await world.store.get_status(REF)
    assert (status.state, len(status.held_deletions)) == ("held", 25)
    assert len((await world.sync()).held_deletions) == 25
    forced = await world.sync(Policy(force_delete=True))
    assert (forced.counts.deleted, len(world.caldav.items)) == (25, 5)


async def test_store_failure_ends_the_run_with_cursors_unmoved() -> None:
    """A store that fails while saving pairs propagates; no cursor is committed."""

    class FlakyStore(MemoryStore):
        async def save_pair(self, ref: BindingRef, pair: PairState) -> None:
            raise StoreUnavailable("redis down")

    store = FlakyStore()
    dt, cal = MemorySide(Side.DINGTALK), MemorySide(Side.CALDAV)
    dt.user_create(ev(summary="x"))
    with pytest.raises(StoreUnavailable):
        await reconcile(REF, dt, cal, store, Policy())
    assert await store.get_cursor(REF, Side.DINGTALK) is None


async def test_progress_status_and_summary_line(world: World) -> None:
    """Progress counts to the total; status keeps counts and last_success; the summary line."""
    for i in range(4):
        world.dingtalk.user_create(ev(summary=str(i)))
    seen: list[tuple[int, int]] = []
    with bound_to_binding(REF), capture_logs(processors=[merge_contextvars]) as logs:
        report = await world.sync(on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    status = await world.store.get_status(REF)
    assert (status.state, status.counts["created"], status.pairs_before) == ("ok", 4, 0)
    assert status.last_success == status.last_run
    line = report.summary_line()
    assert line.startswith("acme/alice-work: created=4 updated=0 deleted=0 conflicts=0 duration=")
    assert line.endswith("s")
    (entry,) = [e for e in logs if e["event"] == "reconciled"]  # binding: from the context
    assert (entry["binding"], entry["created"]) == ("acme/alice-work", 4)


def test_dispositions_follow_the_error_tree() -> None:
    """Retryable -> retry, item-level -> dead letter, the rest -> re-read."""
    assert disposition(SourceUnavailable("x")) == "retry"
    assert disposition(StoreUnavailable("x")) == "retry"
    assert disposition(Unrepresentable("x")) == "dead_letter"
    assert disposition(EtagMismatch("x")) == "reread"
    # An item we may not write (e.g. someone else's event) must not pin the cursors forever.
    assert disposition(PermissionDenied("x")) == "dead_letter"


async def test_write_answered_without_etag_costs_no_write_later(world: World) -> None:
    """No ETag on PUT: the next run records the listed etag, and edits still apply."""
    world.caldav.etag_on_write = False
    dt = world.dingtalk.user_create(ev(summary="v1"))
    await world.sync()
    (pair,) = (await world.store.load_pairs(REF)).values()
    assert pair.caldav_etag is None
    world.reset_counts()
    await world.sync(full=True)
    (pair,) = (await world.store.load_pairs(REF)).values()
    assert (world.writes(), pair.caldav_etag) == (
        0,
        world.caldav.items[pair.caldav_href or ""].etag,
    )
    world.dingtalk.user_update(dt, summary="v2")
    report = await world.sync()
    assert (report.errors, summaries(world.caldav)) == ((), ["v2"])


async def test_killed_before_cursors_commit_the_rerun_writes_nothing(world: World) -> None:
    """A run that died after its writes is re-run from the old cursors: no-op."""

    class DiesAtCommit(MemoryStore):
        async def set_cursors(self, ref: BindingRef, cursors: Mapping[Side, str | None]) -> None:
            raise StoreUnavailable("worker killed")

    world.dingtalk.user_create(ev(summary="d"))
    world.caldav.user_create(ev("c", summary="c"))
    dying = DiesAtCommit()
    with pytest.raises(StoreUnavailable):
        await reconcile(REF, world.dingtalk, world.caldav, dying, Policy())
    world.store = MemoryStore()
    for pair in (await dying.load_pairs(REF)).values():
        await world.store.save_pair(REF, pair)
    world.reset_counts()
    report = await world.sync()
    assert (world.writes(), report.counts.created) == (0, 0)
    assert len(world.dingtalk.items) == len(world.caldav.items) == 2


async def test_killed_between_write_and_save_the_rerun_repairs_without_duplicates(
    world: World,
) -> None:
    """A write whose pair was never saved is matched back (UID or content), not copied again."""

    class DiesAtSave(MemoryStore):
        async def save_pair(self, ref: BindingRef, pair: PairState) -> None:
            raise StoreUnavailable("worker killed")

    world.dingtalk.user_create(ev(summary="d"))
    world.caldav.user_create(ev("c", summary="c"))
    with pytest.raises(StoreUnavailable):
        await reconcile(REF, world.dingtalk, world.caldav, DiesAtSave(), Policy())
    assert world.writes() >= 1  # copies were written, their pairs never saved
    world.reset_counts()
    await world.sync()
    assert world.writes() == 0  # matched back: the DingTalk-born copy by UID, the other by content
    assert len(world.dingtalk.items) == len(world.caldav.items) == 2
    assert len(await world.store.load_pairs(REF)) == 2


async def test_incremental_deletions_are_weighed_against_every_pair(world: World) -> None:
    """An incremental run loads only the pairs its changes name, but the deletion threshold
    still counts every pair: 25 deletions of 60 pairs (42 %) go through, 25 of 35 are held."""
    ids = [world.dingtalk.user_create(ev(summary=str(i))) for i in range(60)]
    await world.sync()
    await world.sync()  # reads back its own 60 CalDAV writes: now nothing is pending
    for item_id in ids[:25]:
        world.dingtalk.user_delete(item_id)
    report = await world.sync()
    assert (len(report.held_deletions), report.counts.deleted) == (0, 25)
    assert (await world.store.get_status(REF)).pairs_before == 60
    for item_id in ids[25:50]:
        world.dingtalk.user_delete(item_id)
    held = await world.sync()
    assert (len(held.held_deletions), held.counts.deleted) == (25, 0)


async def test_incremental_run_still_looks_at_pairs_lacking_a_side(world: World) -> None:
    """A pair missing its CalDAV side (left by a crash) is completed by an incremental run
    whose changes do not mention it."""
    ids = [world.dingtalk.user_create(ev(summary=str(i))) for i in range(3)]
    await world.sync()
    pairs = await world.store.load_pairs(REF)
    (half,) = [p for p in pairs.values() if p.dingtalk_id == ids[0]]
    world.caldav.items.pop(half.caldav_href or "")
    await world.store.save_pair(REF, dataclasses.replace(half, caldav_href=None, caldav_fp=None))
    world.dingtalk.user_update(ids[1], summary="changed")
    report = await world.sync()
    assert report.counts.created == 1
    assert sorted(summaries(world.caldav)) == ["0", "2", "changed"]
