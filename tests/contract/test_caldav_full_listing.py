"""An answer to a sync with a token that is in fact a full listing is read as one.

DAViCal answers a token it does not know with a plain listing of every item and no
removals. The client checks an answer that could be such a listing against one PROPFIND
of the collection's members and reports it complete only when every member is in it, so
absent items are found deleted at once, and a truly incremental answer never is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.calendar_sides import LISTS_ON_UNKNOWN_TOKEN, ics
from tests.fixtures.scripted_dav import COLLECTION, gone, member, multistatus, scripted_server

# A token no server here issued: unknown to DAViCal (answered with a listing), refused by
# the others. DAViCal's own tokens look the same ("data:,<n>").
UNKNOWN = "data:,987654321"


@pytest.fixture
async def client(caldav_calendar: CalendarHandle) -> AsyncIterator[CalDAVClient]:
    """A client on the fresh calendar."""
    cal = caldav_calendar
    async with CalDAVClient(cal.url, cal.username, cal.password) as dav:
        yield dav


async def test_deletion_behind_an_unknown_token_is_found_by_that_read(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """Two items, one deleted by another client, then a read with an unknown token.

    DAViCal answers with a listing of the one left: the read says complete, so the other
    counts as deleted. The other servers refuse the token (SyncTokenInvalid).
    """
    keep, _ = await client.put(None, ics("keep"), etag=None, create=True)
    await client.put(None, ics("drop"), etag=None, create=True)
    assert caldav_calendar.delete_raw("drop.ics") in (200, 204)
    if caldav_calendar.server not in LISTS_ON_UNKNOWN_TOKEN:
        with pytest.raises(errors.SyncTokenInvalid):
            await client.sync(UNKNOWN)
        return
    answer = await client.sync(UNKNOWN)
    assert answer.complete
    assert answer.deleted == ()
    assert [i.href for i in answer.items] == [keep]


async def test_an_incremental_answer_is_not_taken_for_a_full_listing(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """One of two items changed: the answer names it only, so it is not complete.

    It costs one PROPFIND besides the REPORT (and the multiget of servers that do not
    send data inline); an idle poll costs the REPORT alone.
    """
    edit, etag = await client.put(None, ics("edit", "v1"), etag=None, create=True)
    await client.put(None, ics("other"), etag=None, create=True)
    token = (await client.sync(None)).token
    assert token
    before = caldav_calendar.settled_exchanges()
    idle = await client.sync(token)
    assert (idle.items, idle.complete) == ((), False)
    assert [e.method for e in caldav_calendar.since(before)] == ["REPORT"]
    await client.put(edit, ics("edit", "v2"), etag=etag, create=False)
    before = caldav_calendar.settled_exchanges()
    changed = await client.sync(idle.token)
    assert [i.href for i in changed.items] == [edit]
    assert changed.complete is False
    methods = [e.method for e in caldav_calendar.since(before)]
    assert methods.count("PROPFIND") == 1
    assert set(methods) == {"PROPFIND", "REPORT"}


async def test_an_answer_naming_every_member_is_complete(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """The only item changed: the answer names every member, which makes it complete.

    Safe either way: whatever the answer leaves out is not in the calendar now.
    """
    only, etag = await client.put(None, ics("only", "v1"), etag=None, create=True)
    token = (await client.sync(None)).token
    await client.put(only, ics("only", "v2"), etag=etag, create=False)
    answer = await client.sync(token)
    assert ([i.href for i in answer.items], answer.complete) == ([only], True)


# --- answers no server here gives ---------------------------------------------------------


def _xml(body: str) -> web.Response:
    return web.Response(status=207, text=body, content_type="application/xml")


async def _read(sync_answer: str, members: list[str]) -> tuple[bool, list[str]]:
    """``(complete, methods sent)`` of one sync("t0") answered with ``sync_answer``."""
    listing = multistatus(member(COLLECTION, '"c"'), *(member(h, '"e"') for h in members))
    async with scripted_server() as server:

        async def handle(request: web.Request, _body: str) -> web.StreamResponse:
            return _xml(listing if request.method == "PROPFIND" else sync_answer)

        server.handler = handle
        async with CalDAVClient(server.url, "alice", "secret") as dav:
            complete = (await dav.sync("t0")).complete
    return complete, [method for method, _, _ in server.seen]


A, B = COLLECTION + "a.ics", COLLECTION + "b.ics"
ICS = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nEND:VCALENDAR\n"


async def test_a_member_created_meanwhile_keeps_the_answer_incremental() -> None:
    """The answer names a, the PROPFIND right after finds a and b: not complete."""
    complete, sent = await _read(multistatus(member(A, '"e"', ICS), token="t1"), [A, B])
    assert (complete, sent) == (False, ["REPORT", "PROPFIND"])


async def test_an_answer_with_removals_is_incremental_without_asking() -> None:
    """An answer that reports a removal is a real incremental one: no PROPFIND."""
    answer = multistatus(member(A, '"e"', ICS), gone(B), token="t1")
    assert await _read(answer, [A]) == (False, ["REPORT"])


@pytest.mark.parametrize(
    ("token", "members", "expected"),
    [
        ("t0", [], (False, ["REPORT"])),  # idle: same token, nothing listed, nothing asked
        ("t1", [], (True, ["REPORT", "PROPFIND"])),  # a new token, and the calendar is empty
        ("t1", [A], (False, ["REPORT", "PROPFIND"])),  # a new token, a member not named
    ],
)
async def test_an_empty_answer_is_checked_only_under_a_new_token(
    token: str, members: list[str], expected: tuple[bool, list[str]]
) -> None:
    """An empty answer under the same token is idle; under a new one it is checked."""
    assert await _read(multistatus(token=token), members) == expected
