"""CalDAVSide updates change the object as stored, on every server the fixture offers.

What a client put into an item syncd does not map survives an update; the stored text
comes from this run's read (PUT only) or a GET (GET + PUT); a client edit made after the
read is never overwritten (EtagMismatch, nothing written).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from syncd.translate import Context
from tests.fixtures.caldav_servers import CalendarHandle

CTX = Context(timezone="Asia/Shanghai")
CLIENT_ITEM = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Client//EN\r
BEGIN:VEVENT\r
UID:patch-1@client\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Asia/Shanghai:20270301T093000\r
DTEND;TZID=Asia/Shanghai:20270301T100000\r
SUMMARY:{summary}\r
CATEGORIES:Work\r
TRANSP:TRANSPARENT\r
X-CLIENT-PROP;X-P=1:keep\r
BEGIN:VALARM\r
ACTION:EMAIL\r
SUMMARY:mail me\r
DESCRIPTION:mail me\r
ATTENDEE:mailto:me@example.org\r
TRIGGER:-PT30M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


@pytest.fixture
async def client(caldav_calendar: CalendarHandle) -> AsyncIterator[CalDAVClient]:
    """A raw client on the fresh calendar."""
    cal = caldav_calendar
    async with CalDAVClient(cal.url, cal.username, cal.password) as dav:
        yield dav


def _methods(cal: CalendarHandle, since: int) -> list[str]:
    return [m for m, _ in cal.settled_requests()[since:]]


async def _seed(cal: CalendarHandle) -> str:
    status, href = cal.put_raw("client.ics", CLIENT_ITEM.format(summary="Standup"))
    assert status in (200, 201, 204)
    return href


async def test_update_after_a_read_keeps_unmapped_lines_with_one_put(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """An item read in this run is patched from that text: one PUT, no GET; CATEGORIES,
    TRANSP, X- lines and the EMAIL alarm survive; Written.event is what a read reports."""
    href = await _seed(caldav_calendar)
    side = CalDAVSide(client, CTX)
    (remote,) = (await side.changes(None)).items
    assert remote.event is not None
    before = len(caldav_calendar.settled_requests())
    written = await side.update(
        href, dataclasses.replace(remote.event, summary="Daily"), remote.etag
    )
    assert _methods(caldav_calendar, before) == ["PUT"]
    (stored,) = (await client.sync(None)).items
    for line in (
        "CATEGORIES:Work",
        "TRANSP:TRANSPARENT",
        "X-CLIENT-PROP;X-P=1:keep",
        "ACTION:EMAIL",
    ):
        assert line in stored.text
    assert "SUMMARY:Daily" in stored.text
    (again,) = (await CalDAVSide(client, CTX).changes(None)).items
    assert again.event is not None
    assert again.event.fingerprint() == written.event.fingerprint()


async def test_update_without_a_read_gets_the_item_first(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """A side that did not read the item fetches it with one GET, then PUTs."""
    href = await _seed(caldav_calendar)
    (remote,) = (await CalDAVSide(client, CTX).changes(None)).items
    assert remote.event is not None
    fresh = CalDAVSide(client, CTX)
    before = len(caldav_calendar.settled_requests())
    await fresh.update(href, dataclasses.replace(remote.event, summary="Daily"), remote.etag)
    assert _methods(caldav_calendar, before) == ["GET", "PUT"]
    (stored,) = (await client.sync(None)).items
    assert "X-CLIENT-PROP;X-P=1:keep" in stored.text


async def test_client_edit_after_the_read_is_never_overwritten(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """The client changes the item after syncd read it: EtagMismatch and its edit stays —
    refused by If-Match when patching the text read earlier, and without any PUT when the
    item is fetched again (the fetched etag is not the caller's)."""
    href = await _seed(caldav_calendar)
    side = CalDAVSide(client, CTX)
    (remote,) = (await side.changes(None)).items
    assert remote.event is not None
    caldav_calendar.put_raw("client.ics", CLIENT_ITEM.format(summary="Client edit"))
    mine = dataclasses.replace(remote.event, summary="Mine")
    with pytest.raises(errors.EtagMismatch):
        await side.update(href, mine, remote.etag)
    before = len(caldav_calendar.settled_requests())
    with pytest.raises(errors.EtagMismatch):
        await CalDAVSide(client, CTX).update(href, mine, remote.etag)
    assert _methods(caldav_calendar, before) == ["GET"]
    (stored,) = (await client.sync(None)).items
    assert "SUMMARY:Client edit" in stored.text


async def test_update_of_a_vanished_item_is_not_found(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """The item was deleted meanwhile: NotFound from the GET, nothing created."""
    href = await _seed(caldav_calendar)
    (remote,) = (await CalDAVSide(client, CTX).changes(None)).items
    assert remote.event is not None
    await client.delete(href, None)
    with pytest.raises(errors.NotFound):
        await CalDAVSide(client, CTX).update(href, remote.event, None)
    assert (await client.sync(None)).items == ()
