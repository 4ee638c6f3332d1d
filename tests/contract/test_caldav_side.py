"""What only CalDAVSide does, against real Radicale, Xandikos, Cyrus and DAViCal.

The CalendarSide contract every side runs is ``tests/contract/test_calendar_side.py``;
here: unreadable items keep their etag, UIDs for items stored without one, SEQUENCE left
alone by our writes, and the request count of a large listing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from syncd.model import Event, Recurrence
from syncd.translate import Context, event_to_ical
from tests.fixtures.caldav_servers import CalendarHandle, Exchange
from tests.fixtures.calendar_sides import UNTRANSLATABLE
from tests.fixtures.listing import by_id

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = Context(timezone="Asia/Shanghai")


def timed(uid: str = "evt-1", summary: str = "Standup") -> Event:
    """A plain timed event in Asia/Shanghai."""
    return Event(
        uid=uid,
        summary=summary,
        start=datetime(2025, 3, 3, 9, 30, tzinfo=SHANGHAI),
        end=datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI),
    )


SERIES = dataclasses.replace(
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
)


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


def requests_after(cal: CalendarHandle, before: list[Exchange]) -> list[str]:
    """Methods the server logged for the calendar since the snapshot ``before``."""
    return [e.method for e in cal.since(before)]


async def test_untranslatable_item_keeps_its_etag(
    side: CalDAVSide, caldav_calendar: CalendarHandle
) -> None:
    """An item the translator rejects is reported with the etag the server gave it, in a
    full listing and in a delta (the contract suite checks the rest)."""
    cursor = (await side.changes(None)).cursor
    status, bad_href = caldav_calendar.put_raw("broken.ics", UNTRANSLATABLE[caldav_calendar.server])
    assert status in (200, 201, 204)
    for changes in (await side.changes(None), await side.changes(cursor)):
        bad = by_id(changes)[bad_href]
        assert (bad.event, bool(bad.error), bool(bad.etag)) == (None, True, True)


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
    event = SERIES
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
