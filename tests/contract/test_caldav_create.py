"""A calendar that does not exist yet, on real Radicale, Xandikos, Cyrus and DAViCal.

Without ``create`` the client says ``calendar not found: URL`` (``CalendarMissing``);
with it, the first read makes the collection by MKCALENDAR and reads it. A second
MKCALENDAR (another worker got there first) is refused by every server and is no error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from syncd import errors
from syncd.adapters.caldav import _collection
from syncd.adapters.caldav._http import DavHttp
from syncd.adapters.caldav.client import CalDAVClient
from syncd_lab.stack.caldav_base import http
from tests.fixtures.caldav_servers import SERVERS, CalDAVServer


@pytest.fixture(params=SERVERS)
def new_url(request: pytest.FixtureRequest) -> Iterator[tuple[CalDAVServer, str]]:
    """A calendar URL on one server where no collection exists; deleted afterwards."""
    server: CalDAVServer = request.getfixturevalue(f"{request.param}_server")
    url = f"{server.calendar_home}new-{uuid.uuid4().hex[:10]}/"
    yield server, url
    http(url, "DELETE", auth=(server.username, server.password))


def _client(server: CalDAVServer, url: str, *, create: bool) -> CalDAVClient:
    return CalDAVClient(url, server.username, server.password, create=create)


async def test_missing_calendar_is_named_by_its_url(new_url: tuple[CalDAVServer, str]) -> None:
    """Reading a collection that does not exist raises ``CalendarMissing`` with its URL."""
    server, url = new_url
    async with _client(server, url, create=False) as dav:
        with pytest.raises(errors.CalendarMissing) as caught:
            await dav.sync(None)
    assert str(caught.value) == f"calendar not found: {url}"
    dav_http = DavHttp(url, server.username, server.password, timeout=10)
    try:
        assert not await _collection.exists(dav_http, url)
    finally:
        await dav_http.close()


async def test_create_makes_the_calendar_on_first_read(new_url: tuple[CalDAVServer, str]) -> None:
    """``create``: the first read makes the collection (MKCALENDAR) and lists it empty;
    an item written then is read back on the next read."""
    server, url = new_url
    async with _client(server, url, create=True) as dav:
        first = await dav.sync(None)
        assert (first.items, first.complete) == ((), True)
        text = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:made-{uuid.uuid4().hex[:6]}\r\nDTSTAMP:20250101T000000Z\r\n"
            "DTSTART:20270301T100000Z\r\nDTEND:20270301T110000Z\r\nSUMMARY:in a new calendar\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        await dav.put(None, text, etag=None, create=True)
        again = await dav.sync(None)
    assert ["SUMMARY:in a new calendar" in item.text for item in again.items] == [True]


async def test_second_mkcalendar_refusal_is_no_error(new_url: tuple[CalDAVServer, str]) -> None:
    """MKCALENDAR of a collection somebody already made is refused by the server; the
    client sees the calendar is there and carries on."""
    server, url = new_url
    async with _client(server, url, create=True) as dav:
        await dav.sync(None)
    dav_http = DavHttp(url, server.username, server.password, timeout=10)
    try:
        with pytest.raises(errors.SourceError):
            await dav_http.mkcalendar()  # the server's own refusal of the second one
        await _collection.create(dav_http, url)  # ... which create() takes as "exists"
        assert await _collection.exists(dav_http, url)
    finally:
        await dav_http.close()


@pytest.mark.parametrize("name", ["radicale", "xandikos"])
async def test_refused_mkcalendar_of_a_missing_calendar_is_the_reason(
    name: str, request: pytest.FixtureRequest
) -> None:
    """``create`` where the server refuses MKCALENDAR (no parent collection: Radicale 403,
    Xandikos 409) and the calendar stays missing: ``CalendarMissing`` says both."""
    server: CalDAVServer = request.getfixturevalue(f"{name}_server")
    url = f"{server.calendar_home}no-parent-{uuid.uuid4().hex[:8]}/deeper/"
    async with _client(server, url, create=True) as dav:
        with pytest.raises(errors.CalendarMissing) as caught:
            await dav.sync(None)
    refusal = {"radicale": "403 PermissionDenied", "xandikos": "409 InvalidRequest"}[name]
    assert str(caught.value) == f"calendar not found: {url} (MKCALENDAR refused: {refusal})"
