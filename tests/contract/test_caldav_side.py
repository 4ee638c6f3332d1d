"""The CalendarSide contract, run by CalDAVSide against real Radicale, Xandikos, Cyrus, DAViCal."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from syncd import errors
from syncd.adapters.caldav import quirks
from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from syncd.model import Attendee, Changes, Event, Recurrence, Remote, Side
from syncd.sync.ports import CalendarSide
from syncd.translate import Context, event_to_ical
from tests.fixtures.caldav_servers import CalendarHandle, Exchange

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = Context(timezone="Asia/Shanghai")
# Servers that answer a token they do not know with a plain listing (no error).
LISTS_ON_UNKNOWN_TOKEN = {q.server for q in quirks.QUIRKS if q.meaning == "full-listing"}


def timed(uid: str = "evt-1", summary: str = "Standup") -> Event:
    """A plain timed event in Asia/Shanghai."""
    return Event(
        uid=uid,
        summary=summary,
        start=datetime(2025, 3, 3, 9, 30, tzinfo=SHANGHAI),
        end=datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI),
    )


SHAPES = {
    "timed": timed(),
    "rich": dataclasses.replace(
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
    ),
    "all-day": Event(uid="day-1", summary="Offsite", start=date(2025, 3, 1), end=date(2025, 3, 3)),
    "series": dataclasses.replace(
        timed("series-1", "Weekly"),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=10;BYDAY=MO", (datetime(2025, 3, 10, 9, 30, tzinfo=SHANGHAI),)
        ),
        overrides=(
            dataclasses.replace(
                timed("series-1", "Weekly (moved)"),
                start=datetime(2025, 3, 17, 11, 0, tzinfo=SHANGHAI),
                end=datetime(2025, 3, 17, 11, 30, tzinfo=SHANGHAI),
                recurrence_id=datetime(2025, 3, 17, 9, 30, tzinfo=SHANGHAI),
            ),
        ),
    ),
}


@pytest.fixture
async def client(caldav_calendar: CalendarHandle) -> AsyncIterator[CalDAVClient]:
    """A raw client on the fresh calendar (small multiget chunks, to exercise chunking)."""
    cal = caldav_calendar
    async with CalDAVClient(cal.url, cal.username, cal.password, chunk_size=40) as dav:
        yield dav


@pytest.fixture
def side(client: CalDAVClient) -> CalDAVSide:
    """The CalDAV side under test."""
    return CalDAVSide(client, CTX)


def by_id(changes: Changes) -> dict[str, Remote]:
    """Reported items keyed by href."""
    return {r.id: r for r in changes.items}


def requests_after(cal: CalendarHandle, before: list[Exchange]) -> list[str]:
    """Methods the server logged for the calendar since the snapshot ``before``."""
    return [e.method for e in cal.since(before)]


def test_caldav_side_is_a_calendar_side(side: CalDAVSide) -> None:
    """CalDAVSide satisfies the CalendarSide port and says it is the CalDAV side."""
    port: CalendarSide = side
    assert port.side is Side.CALDAV


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_written_event_is_what_a_read_reports(side: CalDAVSide, shape: str) -> None:
    """What create() says it wrote has the fingerprint a later full read reports for it."""
    event = SHAPES[shape]
    written = await side.create(event)
    assert written.event.uid == event.uid
    assert written.event.summary == event.summary
    listing = await side.changes(None)
    assert listing.complete
    (remote,) = listing.items
    assert remote.id == written.id
    assert remote.error is None
    assert remote.event is not None
    assert remote.event.fingerprint() == written.event.fingerprint()
    assert written.etag is None or remote.etag == written.etag


async def test_create_twice_raises_already_exists(side: CalDAVSide) -> None:
    """A second create of the same UID never overwrites: AlreadyExists."""
    await side.create(timed(summary="first"))
    with pytest.raises(errors.AlreadyExists):
        await side.create(timed(summary="second"))
    (remote,) = (await side.changes(None)).items
    assert remote.event is not None
    assert remote.event.summary == "first"


async def test_update_with_current_etag_then_stale_etag(side: CalDAVSide) -> None:
    """update() with the current etag replaces the item; with the old etag: EtagMismatch,
    naming the item, the etag asked for and the one it has now."""
    first = await side.create(timed(summary="v1"))
    second = await side.update(first.id, timed(summary="v2"), first.etag)
    assert second.id == first.id
    assert second.event.summary == "v2"
    with pytest.raises(errors.EtagMismatch) as lost:
        await side.update(first.id, timed(summary="v3"), first.etag)
    assert (lost.value.href, lost.value.etag) == (first.id, first.etag)
    assert lost.value.current_etag is not None
    assert lost.value.current_etag != first.etag
    (remote,) = (await side.changes(None)).items
    assert remote.event is not None
    assert remote.event.summary == "v2"
    assert remote.event.fingerprint() == second.event.fingerprint()


async def test_delete_with_stale_etag_then_current(side: CalDAVSide) -> None:
    """delete() with a stale etag: EtagMismatch; with the current one it deletes; twice is fine."""
    first = await side.create(timed(summary="v1"))
    second = await side.update(first.id, timed(summary="v2"), first.etag)
    with pytest.raises(errors.EtagMismatch):
        await side.delete(first.id, first.etag)
    await side.delete(second.id, second.etag)
    await side.delete(second.id, second.etag)
    assert (await side.changes(None)).items == ()


async def test_incremental_changes_report_exactly_each_change(
    side: CalDAVSide, caldav_calendar: CalendarHandle
) -> None:
    """After a listing: nothing → nothing (1 request), create/update/delete → exactly that item."""
    cursor = (await side.changes(None)).cursor
    before = caldav_calendar.settled_exchanges()
    quiet = await side.changes(cursor)
    assert (quiet.items, quiet.deleted, quiet.complete) == ((), (), False)
    assert requests_after(caldav_calendar, before) == ["REPORT"]

    made = await side.create(timed("inc-1", "new"))
    created = await side.changes(quiet.cursor)
    assert list(by_id(created)) == [made.id]
    assert created.deleted == ()

    edited = await side.update(made.id, timed("inc-1", "edited"), made.etag)
    updated = await side.changes(created.cursor)
    (remote,) = updated.items
    assert remote.event is not None
    assert remote.event.fingerprint() == edited.event.fingerprint()
    assert updated.deleted == ()

    await side.delete(edited.id, edited.etag)
    deleted = await side.changes(updated.cursor)
    assert (deleted.items, deleted.deleted) == ((), (made.id,))


@pytest.mark.parametrize("cursor", ["http://example.invalid/sync/1", "not-a-token", "0"])
async def test_bogus_cursor_is_stale_and_full_listing_recovers(
    side: CalDAVSide, caldav_calendar: CalendarHandle, cursor: str
) -> None:
    """A bogus cursor raises SyncTokenInvalid, or (DAViCal, which answers it with a plain
    listing) comes back as a complete listing; changes(None) then lists everything."""
    made = await side.create(timed())
    if caldav_calendar.server in LISTS_ON_UNKNOWN_TOKEN:
        answer = await side.changes(cursor)
        assert (answer.complete, answer.deleted, list(by_id(answer))) == (True, (), [made.id])
    else:
        with pytest.raises(errors.SyncTokenInvalid):
            await side.changes(cursor)
    listing = await side.changes(None)
    assert listing.complete
    assert list(by_id(listing)) == [made.id]


# Servers differ in what they store: Xandikos keeps text it cannot read, the others refuse
# or skip it. Each gets an item it accepts and our translator cannot turn into an Event.
_TASK = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:broken-1\r\n"
    "DTSTAMP:20250101T000000Z\r\nSUMMARY:a task\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
)
UNTRANSLATABLE = {
    "xandikos": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:broken-1\r\n"
        "DTSTAMP:20250101T000000Z\r\nDTSTART:garbage\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    ),
    "radicale": _TASK,
    "cyrus": _TASK,
    "davical": _TASK,
}


async def test_untranslatable_item_is_reported_not_dropped(
    side: CalDAVSide, caldav_calendar: CalendarHandle
) -> None:
    """An item the translator rejects comes back as Remote(error=...), and the rest still lists."""
    good = await side.create(timed())
    cursor = (await side.changes(None)).cursor
    status, bad_href = caldav_calendar.put_raw("broken.ics", UNTRANSLATABLE[caldav_calendar.server])
    assert status in (200, 201, 204)
    for changes in (await side.changes(None), await side.changes(cursor)):
        items = by_id(changes)
        assert items[bad_href].event is None
        assert items[bad_href].error
        assert items[bad_href].etag
        assert changes.deleted == ()
    full = by_id(await side.changes(None))
    assert full[good.id].event is not None
    assert full[good.id].error is None


NO_UID = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
    "DTSTART:20250303T013000Z\r\nDTEND:20250303T020000Z\r\nSUMMARY:{}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


async def test_items_without_uid_get_distinct_stable_uids(
    xandikos_calendar: CalendarHandle,
) -> None:
    """Items stored without a UID (Xandikos keeps them) each read with their own lasting UID."""
    for name in ("one", "two"):
        status, _ = xandikos_calendar.put_raw(f"{name}.ics", NO_UID.format(name))
        assert status in (200, 201, 204)
    cal = xandikos_calendar
    async with CalDAVClient(cal.url, cal.username, cal.password) as dav:
        side = CalDAVSide(dav, CTX)
        first, again = by_id(await side.changes(None)), by_id(await side.changes(None))
    uids = {href: r.event.uid for href, r in first.items() if r.event is not None}
    assert len(uids) == 2
    assert len(set(uids.values())) == 2
    assert all(uid.startswith("caldav-") and uid.endswith("@syncd") for uid in uids.values())
    assert {href: r.event.uid for href, r in again.items() if r.event is not None} == uids


async def test_our_writes_never_bump_sequence(side: CalDAVSide, client: CalDAVClient) -> None:
    """The stored SEQUENCE is the one in the text we generated, after create and after update."""
    event = SHAPES["series"]
    sent = set(re.findall(r"SEQUENCE:(\d+)", event_to_ical(event, CTX)))
    made = await side.create(event)
    await side.update(made.id, event, made.etag)
    (stored,) = (await client.sync(None)).items
    assert set(re.findall(r"SEQUENCE:(\d+)", stored.text)) == sent


@pytest.mark.slow
async def test_hundred_items_list_in_few_requests(
    side: CalDAVSide, caldav_calendar: CalendarHandle
) -> None:
    """100 items list with 1 sync REPORT + 3 multigets (chunk 40), each item once, none broken."""
    sem = asyncio.Semaphore(4)

    async def create(n: int) -> None:
        async with sem:
            await side.create(timed(f"many-{n:03}", f"item {n}"))

    await asyncio.gather(*(create(n) for n in range(100)))
    before = caldav_calendar.settled_exchanges()
    listing = await side.changes(None)
    assert requests_after(caldav_calendar, before) == ["REPORT"] * 4
    assert len(by_id(listing)) == 100
    assert all(r.event is not None for r in listing.items)
    assert {r.event.summary for r in listing.items if r.event} == {f"item {n}" for n in range(100)}
