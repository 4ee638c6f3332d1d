"""The CalendarSide contract, run by every side: the fake and the real ones alike.

One suite, parametrised over the benches of ``tests/fixtures/calendar_sides.py``:
``memory`` and ``memory-dingtalk`` (the :class:`MemorySide` the engine's state machine
trusts), ``dingtalk`` (the sandbox) and ``radicale``, ``xandikos``, ``cyrus``, ``davical``.
Where sides legitimately differ the test reads the side's declared :class:`Traits`, or is
collected only for the sides that have the trait; nothing is skipped. What only one side
does (request counts of CalDAV multigets, DingTalk's series patches, ...) stays in that
side's own test module.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from syncd import errors
from syncd.model import Attendee, Changes, Event, Recurrence
from tests.fixtures.calendar_sides import Bench, Traits, benches
from tests.fixtures.listing import by_id, fingerprint, only, soon, soon_day


def writable(t: Traits) -> bool:
    return t.writable


def incremental(t: Traits) -> bool:
    return t.writable and t.incremental


def read_only(t: Traits) -> bool:
    return not t.writable


async def seed(bench: Bench, event: Event) -> str:
    """Put ``event`` on the side: written through the port, or (a read-only side) served
    by the other end, as another client would. Its id."""
    if bench.traits.writable:
        return (await bench.side.create(event)).id
    return await bench.put_item(event)


def timed(uid: str = "evt-1", summary: str = "Standup", days: int = 3) -> Event:
    """A plain half-hour event ``days`` from today (nine o'clock, Shanghai)."""
    start = soon(days, 9)
    return Event(uid, summary, start, start + timedelta(minutes=30))


def rich() -> Event:
    """An event with every field syncd maps filled in."""
    return dataclasses.replace(
        timed("rich-1", "Planning"),
        description="line one\nline two, with; punctuation",
        location="Room 3 / 北京",
        organizer="alice@acme.example",
        attendees=(
            Attendee("alice@acme.example", "Alice", "accepted"),
            Attendee("bob@acme.example", "Bob", "needs-action", optional=True),
        ),
        reminders=(10, 60),
        privacy="private",
    )


def series() -> Event:
    """A daily five-occurrence series with one moved occurrence and one cancelled one."""
    base = timed("series-1", "Daily", days=2)
    start = base.start
    moved_rid = start + timedelta(days=1)
    moved = dataclasses.replace(
        base, summary="Daily (late)", start=moved_rid + timedelta(hours=3),
        end=moved_rid + timedelta(hours=3, minutes=30), recurrence_id=moved_rid,
    )  # fmt: skip
    rule = Recurrence("FREQ=DAILY;COUNT=5", exdates=(start + timedelta(days=3),))
    return dataclasses.replace(base, recurrence=rule, overrides=(moved,))


def all_day() -> Event:
    """A two-day all-day event a week from today."""
    return Event("day-1", "Offsite", soon_day(7), soon_day(9), organizer="alice@acme.example")


SHAPES = {"timed": timed, "rich": rich, "all-day": all_day, "series": series}


@benches()
def test_side_is_a_calendar_side(bench: Bench) -> None:
    """The side says which side of a binding it is."""
    assert bench.side.side is bench.traits.side


@benches(read_only)
@pytest.mark.parametrize("write", ["create", "update", "delete"])
async def test_writes_to_a_read_only_side_are_refused(bench: Bench, write: str) -> None:
    """A read-only side refuses every write with PermissionDenied; nothing changes."""
    item_id = await bench.put_item(timed())
    calls = {
        "create": lambda: bench.side.create(timed("evt-2")),
        "update": lambda: bench.side.update(item_id, timed(summary="changed"), None),
        "delete": lambda: bench.side.delete(item_id, None),
    }
    with pytest.raises(errors.PermissionDenied):
        await calls[write]()
    listing = await bench.side.changes(None)
    assert [(r.id, r.event.summary if r.event else None) for r in listing.items] == [
        (item_id, "Standup")
    ]


@benches()
async def test_an_item_another_client_stored_is_listed(bench: Bench) -> None:
    """An event another client put in the calendar is listed, translated, with its times."""
    event = timed("foreign-1", "Theirs")
    item_id = await bench.put_item(event)
    listing = await bench.side.changes(None)
    assert listing.complete
    remote = only(listing, item_id)
    assert remote.event is not None, remote.error
    assert (remote.event.summary, remote.event.start, remote.event.end) == (
        "Theirs",
        event.start,
        event.end,
    )


@benches(writable)
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_written_event_is_what_a_read_reports(bench: Bench, shape: str) -> None:
    """What create() says it wrote has the fingerprint a later full read reports for it."""
    event = SHAPES[shape]()
    if event.overrides and not bench.traits.recurrence_overrides:
        event = dataclasses.replace(event, overrides=())
    written = await bench.side.create(event)
    assert written.event.uid == event.uid
    assert written.event.summary == event.summary
    listing = await bench.side.changes(None)
    assert listing.complete
    assert listing.cursor
    remote = only(listing, written.id)
    assert [r.id for r in listing.items] == [written.id]  # a series is one item
    assert remote.error is None
    assert fingerprint(remote) == written.event.fingerprint()
    assert written.etag is None or remote.etag == written.etag
    assert remote.event is not None
    assert (remote.event.uid == event.uid) is bench.traits.keeps_uids
    assert len(remote.event.overrides) == len(event.overrides)


@benches(lambda t: t.writable and t.uid_names_the_item)
async def test_create_of_a_held_uid_raises_already_exists(bench: Bench) -> None:
    """A second create of the same UID never overwrites: AlreadyExists."""
    await bench.side.create(timed(summary="first"))
    with pytest.raises(errors.AlreadyExists):
        await bench.side.create(timed(summary="second"))
    (remote,) = (await bench.side.changes(None)).items
    assert remote.event is not None
    assert remote.event.summary == "first"


@benches(lambda t: t.writable and not t.uid_names_the_item)
async def test_create_of_a_held_uid_makes_a_second_item(bench: Bench) -> None:
    """Where ids are the side's own (DingTalk), the same UID twice is two items."""
    one = await bench.side.create(timed(summary="first"))
    two = await bench.side.create(timed(summary="second"))
    assert one.id != two.id
    listing = by_id(await bench.side.changes(None))
    assert {k: r.event.summary for k, r in listing.items() if r.event} == {
        one.id: "first",
        two.id: "second",
    }


@benches(writable)
async def test_update_with_current_etag_then_stale_etag(bench: Bench) -> None:
    """update() with the current etag replaces the item; with the old etag: EtagMismatch."""
    first = await bench.side.create(timed(summary="v1"))
    second = await bench.side.update(first.id, timed(summary="v2"), first.etag)
    assert second.id == first.id
    assert second.event.summary == "v2"
    assert second.etag != first.etag
    with pytest.raises(errors.EtagMismatch) as lost:
        await bench.side.update(first.id, timed(summary="v3"), first.etag)
    assert (lost.value.href, lost.value.etag) == (first.id, first.etag)
    remote = only(await bench.side.changes(None), first.id)
    assert remote.event is not None
    assert remote.event.summary == "v2"
    assert fingerprint(remote) == second.event.fingerprint()


@benches(writable)
async def test_update_after_a_foreign_edit_is_refused(bench: Bench) -> None:
    """Another client's edit moves the etag: update() with ours raises and writes nothing;
    with the etag a read reports it succeeds."""
    written = await bench.side.create(timed(summary="mine"))
    await bench.foreign_edit(written.id, timed(summary="someone else"))
    with pytest.raises(errors.EtagMismatch):
        await bench.side.update(written.id, timed(summary="mine again"), written.etag)
    current = only(await bench.side.changes(None), written.id)
    assert current.event is not None
    assert current.event.summary == "someone else"
    ok = await bench.side.update(written.id, timed(summary="mine again"), current.etag)
    assert ok.event.summary == "mine again"


@benches(writable)
async def test_update_clears_fields_the_event_no_longer_has(bench: Bench) -> None:
    """Description, location, attendees and reminders removed in the event are removed."""
    written = await bench.side.create(rich())
    bare = dataclasses.replace(rich(), description="", location="", attendees=(), reminders=())
    again = await bench.side.update(written.id, bare, written.etag)
    remote = only(await bench.side.changes(None), written.id)
    assert remote.event is not None
    assert (remote.event.description, remote.event.location) == ("", "")
    assert (remote.event.attendees, remote.event.reminders) == ((), ())
    assert fingerprint(remote) == again.event.fingerprint()


@benches(writable)
async def test_delete_with_stale_etag_then_current(bench: Bench) -> None:
    """delete() with a stale etag: EtagMismatch; with the current one it deletes; twice is fine."""
    first = await bench.side.create(timed(summary="v1"))
    second = await bench.side.update(first.id, timed(summary="v2"), first.etag)
    with pytest.raises(errors.EtagMismatch):
        await bench.side.delete(first.id, first.etag)
    await bench.side.delete(second.id, second.etag)
    await bench.side.delete(second.id, second.etag)
    await bench.side.delete(second.id, None)
    assert (await bench.side.changes(None)).items == ()


@benches(writable)
async def test_update_of_a_deleted_item_loses_the_race(bench: Bench) -> None:
    """A conditional update of an item deleted meanwhile raises NotFound or EtagMismatch."""
    written = await bench.side.create(timed())
    await bench.side.delete(written.id, written.etag)
    with pytest.raises((errors.NotFound, errors.EtagMismatch)):
        await bench.side.update(written.id, timed(summary="late"), written.etag)
    assert (await bench.side.changes(None)).items == ()


@benches(writable)
async def test_deleted_item_is_never_listed_as_an_item(bench: Bench) -> None:
    """After a delete, a full listing lists the item no more; sides that keep tombstones
    (DingTalk) name it as deleted there too."""
    kept = await bench.side.create(timed("keep-1", "kept"))
    gone = await bench.side.create(timed("gone-1", "gone", days=4))
    await bench.side.delete(gone.id, gone.etag)
    full = await bench.side.changes(None)
    assert list(by_id(full)) == [kept.id]
    assert (gone.id in full.deleted) is bench.traits.deletions_in_full_listing
    assert kept.id not in full.deleted


@benches()
async def test_quiet_poll_costs_one_request_and_reports_nothing(bench: Bench) -> None:
    """With nothing changed since the cursor (a series among the items): one request, an
    empty incomplete delta."""
    await seed(bench, timed())
    await seed(bench, series())
    cursor = (await bench.side.changes(None)).cursor
    before = bench.requests()
    quiet = await bench.side.changes(cursor)
    spent = bench.requests() - before
    assert sum(spent.values()) == 1, spent
    assert (quiet.items, quiet.deleted, quiet.complete) == ((), (), False)
    assert quiet.cursor


def reported(bench: Bench, delta: Changes, expected: list[str], listed: dict[str, str]) -> None:
    """``delta`` reports exactly ``expected`` (sides without exact deltas: at least those,
    plus items of ``listed`` unchanged — the same fingerprint as listed)."""
    ids = list(by_id(delta))
    if bench.traits.exact_deltas:
        assert ids == expected
        return
    assert set(expected) <= set(ids)
    extras = {i: fingerprint(r) for i, r in by_id(delta).items() if i not in expected}
    assert extras == {i: listed[i] for i in extras}


@benches(incremental)
async def test_incremental_changes_report_exactly_each_change(bench: Bench) -> None:
    """After a listing, create/update/delete each come back as exactly that item."""
    other = await bench.side.create(timed("other-1", "untouched", days=5))
    listing = await bench.side.changes(None)
    listed = {i: fingerprint(r) for i, r in by_id(listing).items()}

    made = await bench.side.create(timed("inc-1", "new"))
    created = await bench.side.changes(listing.cursor)
    reported(bench, created, [made.id], listed)
    assert fingerprint(by_id(created)[made.id]) == made.event.fingerprint()
    assert created.deleted == ()

    edited = await bench.side.update(made.id, timed("inc-1", "edited"), made.etag)
    updated = await bench.side.changes(created.cursor)
    reported(bench, updated, [made.id], listed)
    assert fingerprint(by_id(updated)[made.id]) == edited.event.fingerprint()
    assert updated.deleted == ()

    await bench.side.delete(edited.id, edited.etag)
    deleted = await bench.side.changes(updated.cursor)
    reported(bench, deleted, [], listed)
    assert deleted.deleted == (made.id,)
    assert other.id not in deleted.deleted


@benches()
@pytest.mark.parametrize("cursor", ["http://example.invalid/sync/1", "not-a-token", "0"])
async def test_bogus_cursor_is_stale_and_full_listing_recovers(bench: Bench, cursor: str) -> None:
    """A cursor the side never issued raises SyncTokenInvalid, or (DAViCal, which answers it
    with a plain listing) comes back as a complete listing; changes(None) lists everything."""
    made = await seed(bench, timed())
    if bench.traits.lists_on_unknown_cursor:
        answer = await bench.side.changes(cursor)
        assert (answer.complete, answer.deleted, list(by_id(answer))) == (True, (), [made])
    else:
        with pytest.raises(errors.SyncTokenInvalid):
            await bench.side.changes(cursor)
    listing = await bench.side.changes(None)
    assert listing.complete
    assert list(by_id(listing)) == [made]


@benches(lambda t: incremental(t) and t.bench_expires_cursors)
async def test_expired_cursor_raises_sync_token_invalid(bench: Bench) -> None:
    """A cursor the side has expired raises SyncTokenInvalid; a full listing then works."""
    made = await bench.side.create(timed())
    cursor = (await bench.side.changes(None)).cursor
    assert bench.expire_cursors is not None
    bench.expire_cursors()
    with pytest.raises(errors.SyncTokenInvalid):
        await bench.side.changes(cursor)
    listing = await bench.side.changes(None)
    assert listing.complete
    assert list(by_id(listing)) == [made.id]


@benches()
async def test_untranslatable_item_is_reported_not_dropped(bench: Bench) -> None:
    """An item the translator rejects comes back as Remote(error=...), and the rest still
    lists, in a full listing and in a delta (a complete one, for a side without deltas)."""
    good = await seed(bench, timed())
    cursor = (await bench.side.changes(None)).cursor
    bad_id = await bench.put_untranslatable()
    for changes in (await bench.side.changes(None), await bench.side.changes(cursor)):
        items = by_id(changes)
        assert items[bad_id].event is None
        assert items[bad_id].error
        assert changes.deleted == ()
    full = by_id(await bench.side.changes(None))
    assert full[good].event is not None
    assert full[good].error is None
