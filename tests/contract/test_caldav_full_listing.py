"""An answer to a sync with a token that is in fact a full listing is read as one.

DAViCal answers a token it does not know with a plain listing of every item and no
removals. The client checks an answer that could be such a listing against one PROPFIND
of the collection's members and reports it complete only when every member is in it, so
absent items are found deleted at once, and a truly incremental answer never is. Given
hrefs it knows (the worker passes a few mapped ones), the client first asks for those the
answer leaves out: one still there proves the answer incremental without the PROPFIND.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient, KnownHrefs
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


# --- with known hrefs (what the worker passes: a few hrefs its store maps) ----------------


def _known(*hrefs: str) -> KnownHrefs:
    async def known() -> list[str]:
        return list(hrefs)

    return known


async def test_a_known_member_left_out_spares_listing_every_member(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """One of two items changed: the other, known, is still there (one multiget, which
    also asks for a known href that is gone), so the answer is incremental without a
    PROPFIND of every member."""
    edit, etag = await client.put(None, ics("edit", "v1"), etag=None, create=True)
    other, _ = await client.put(None, ics("other"), etag=None, create=True)
    token = (await client.sync(None)).token
    assert token
    await client.put(edit, ics("edit", "v2"), etag=etag, create=False)
    before = caldav_calendar.settled_exchanges()
    never = client.path + "never-there.ics"
    changed = await client.sync(token, known=_known(edit, never, other))
    assert ([i.href for i in changed.items], changed.complete) == ([edit], False)
    methods = [e.method for e in caldav_calendar.since(before)]
    assert "PROPFIND" not in methods
    assert methods[:2] == ["REPORT", "REPORT"]  # the sync, the multiget of `other`
    assert len(methods) <= 3  # and the multiget of the changed item, if not sent inline


async def test_deletion_behind_an_unknown_token_is_found_with_known_hrefs(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """The known hrefs the listing leaves out are gone: every member is listed, and the
    answer of DAViCal (a plain listing) is still read as complete."""
    keep, _ = await client.put(None, ics("keep"), etag=None, create=True)
    drop, _ = await client.put(None, ics("drop"), etag=None, create=True)
    assert caldav_calendar.delete_raw("drop.ics") in (200, 204)
    if caldav_calendar.server not in LISTS_ON_UNKNOWN_TOKEN:
        with pytest.raises(errors.SyncTokenInvalid):
            await client.sync(UNKNOWN, known=_known(keep, drop))
        return
    before = caldav_calendar.settled_exchanges()
    answer = await client.sync(UNKNOWN, known=_known(keep, drop))
    assert (answer.complete, answer.deleted) == (True, ())
    assert [i.href for i in answer.items] == [keep]
    assert "PROPFIND" in [e.method for e in caldav_calendar.since(before)]


def _is_multiget(body: str) -> bool:
    return "calendar-multiget" in body


async def _read_known(
    sync_answer: str, members: list[str], known: list[str], multiget_status: int = 207
) -> tuple[bool, list[str]]:
    """``(complete, methods sent)`` of sync("t0", known=...): multigets answer for members."""
    listing = multistatus(member(COLLECTION, '"c"'), *(member(h, '"e"') for h in members))
    async with scripted_server() as server:

        async def handle(request: web.Request, body: str) -> web.StreamResponse:
            if request.method == "PROPFIND":
                return _xml(listing)
            if not _is_multiget(body):
                return _xml(sync_answer)
            if multiget_status != 207:
                return web.Response(status=multiget_status)
            asked = [h for h in members if f">{h}<" in body]
            return _xml(multistatus(*(member(h, '"e"', ICS) for h in asked)))

        server.handler = handle
        async with CalDAVClient(server.url, "alice", "secret") as dav:
            complete = (await dav.sync("t0", known=_known(*known))).complete
    return complete, [method for method, _, _ in server.seen]


ONLY_A = multistatus(member(A, '"e"', ICS), token="t1")


async def test_a_known_member_still_there_makes_the_answer_incremental() -> None:
    """b is known, left out and still there: no PROPFIND."""
    assert await _read_known(ONLY_A, [A, B], [A, B]) == (False, ["REPORT", "REPORT"])


async def test_known_hrefs_all_gone_fall_back_to_listing_every_member() -> None:
    """b is known but gone: the PROPFIND decides (here: the answer names every member)."""
    sent = ["REPORT", "REPORT", "PROPFIND"]
    assert await _read_known(ONLY_A, [A], [A, B]) == (True, sent)


async def test_known_hrefs_all_in_the_answer_fall_back_to_listing_every_member() -> None:
    """Nothing known is left out: nothing to ask, the PROPFIND decides."""
    assert await _read_known(ONLY_A, [A, B], [A]) == (False, ["REPORT", "PROPFIND"])


async def test_a_refused_multiget_falls_back_to_listing_every_member() -> None:
    """A server refusing the multiget (400) is asked for every member instead."""
    sent = ["REPORT", "REPORT", "PROPFIND"]
    assert await _read_known(ONLY_A, [A, B], [B], multiget_status=400) == (False, sent)


async def test_no_known_hrefs_are_asked_for_when_the_answer_is_idle() -> None:
    """The idle poll (same token, nothing listed) asks nothing more, known hrefs or not."""
    assert await _read_known(multistatus(token="t0"), [A], [A]) == (False, ["REPORT"])
