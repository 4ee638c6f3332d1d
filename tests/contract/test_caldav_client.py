"""The raw CalDAVClient against real Radicale, Xandikos, Cyrus and DAViCal: text in and out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from syncd import errors
from syncd.adapters.caldav import quirks
from syncd.adapters.caldav.client import CalDAVClient
from tests.fixtures.caldav_servers import CalendarHandle, Exchange, make_calendar
from tests.fixtures.calendar_sides import LISTS_ON_UNKNOWN_TOKEN, ics


# Servers that answer a token they do not know with a plain listing (no error).
@pytest.fixture
async def client(caldav_calendar: CalendarHandle) -> AsyncIterator[CalDAVClient]:
    """A client on the fresh calendar."""
    async with CalDAVClient(
        caldav_calendar.url, caldav_calendar.username, caldav_calendar.password
    ) as dav:
        yield dav


def reports(cal: CalendarHandle, before: list[Exchange]) -> list[str]:
    """Methods of the requests the server logged for ``cal`` since the snapshot ``before``."""
    return [e.method for e in cal.since(before)]


async def test_empty_calendar_lists_nothing_with_a_token(client: CalDAVClient) -> None:
    """A full listing of a new calendar is complete, empty, and carries a sync token."""
    listing = await client.sync(None)
    assert listing.complete
    assert listing.items == listing.deleted == listing.unreadable == ()
    assert listing.token


async def test_created_item_reads_back_unchanged(client: CalDAVClient) -> None:
    """A created item is listed at the href put() returned, with its text and SEQUENCE intact."""
    href, etag = await client.put(None, ics("a-1", sequence=7), etag=None, create=True)
    assert href == client.path + "a-1.ics"
    (item,) = (await client.sync(None)).items
    assert item.href == href
    assert etag is None or item.etag == etag
    assert "SUMMARY:hello" in item.text
    assert "SEQUENCE:7" in item.text


async def test_uid_that_is_not_a_safe_file_name_is_hashed(client: CalDAVClient) -> None:
    """A UID with '@' or '/' becomes a hashed, deterministic file name."""
    uid = "weird/uid@example.com"
    href, _ = await client.put(None, ics(uid), etag=None, create=True)
    assert href == client.href_for_uid(uid)
    assert "/" not in href.removeprefix(client.path)
    assert [i.href for i in (await client.sync(None)).items] == [href]


async def test_create_never_overwrites(client: CalDAVClient) -> None:
    """Creating at a taken href raises AlreadyExists (naming the href and the If-None-Match
    condition) and leaves the first item alone."""
    href, _ = await client.put(None, ics("dup", "first"), etag=None, create=True)
    with pytest.raises(errors.AlreadyExists) as taken:
        await client.put(None, ics("dup", "second"), etag=None, create=True)
    assert (taken.value.href, taken.value.etag) == (href, "*")
    (item,) = (await client.sync(None)).items
    assert "SUMMARY:first" in item.text


async def test_update_needs_the_current_etag(client: CalDAVClient) -> None:
    """Update with the current etag works; with the old one it raises EtagMismatch, which
    names the href and the etag the write was conditional on."""
    href, etag = await client.put(None, ics("u-1", "v1"), etag=None, create=True)
    if etag is None:  # neither test server does this, but the contract allows it
        etag = (await client.sync(None)).items[0].etag
    new_href, new_etag = await client.put(href, ics("u-1", "v2"), etag=etag, create=False)
    assert new_href == href
    assert new_etag != etag
    with pytest.raises(errors.EtagMismatch) as lost:
        await client.put(href, ics("u-1", "v3"), etag=etag, create=False)
    assert lost.value.href == href
    assert lost.value.etag is not None
    assert lost.value.etag.strip('"') == etag.strip('"')
    (item,) = (await client.sync(None)).items
    assert "SUMMARY:v2" in item.text
    assert item.etag == new_etag


async def test_delete_is_conditional_and_idempotent(client: CalDAVClient) -> None:
    """Delete with a stale etag raises EtagMismatch (with href and etag); twice is fine."""
    href, etag = await client.put(None, ics("d-1"), etag=None, create=True)
    with pytest.raises(errors.EtagMismatch) as lost:
        await client.delete(href, '"not-the-etag"')
    assert (lost.value.href, lost.value.etag) == (href, '"not-the-etag"')
    await client.delete(href, etag)
    await client.delete(href, etag)
    assert (await client.sync(None)).items == ()


async def test_incremental_sync_reports_exactly_each_change(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """After a listing, nothing/an update/a delete are reported as exactly that, each once."""
    keep, _ = await client.put(None, ics("keep"), etag=None, create=True)
    href, etag = await client.put(None, ics("edit", "v1"), etag=None, create=True)
    token = (await client.sync(None)).token
    before = caldav_calendar.settled_exchanges()
    quiet = await client.sync(token)
    assert (quiet.items, quiet.deleted, quiet.complete) == ((), (), False)
    assert reports(caldav_calendar, before) == ["REPORT"]  # one request when nothing changed
    _, etag = await client.put(href, ics("edit", "v2"), etag=etag, create=False)
    changed = await client.sync(quiet.token)
    assert [(i.href, i.etag) for i in changed.items] == [(href, etag)]
    assert "SUMMARY:v2" in changed.items[0].text
    assert changed.deleted == ()
    await client.delete(keep, None)
    gone = await client.sync(changed.token)
    assert (gone.items, gone.deleted) == ((), (keep,))


async def _stale_token_reads_in_full(client: CalDAVClient, server: str, token: str) -> None:
    """``token`` is unknown to the calendar: SyncTokenInvalid, or a listing read as complete.

    Servers in the quirks table's "full-listing" rows (DAViCal) answer with a plain listing
    instead of an error; the client must then say the listing is complete.
    """
    if server in LISTS_ON_UNKNOWN_TOKEN:
        answer = await client.sync(token)
        assert answer.complete
        assert answer.deleted == ()
        assert [i.href for i in answer.items] == [client.path + "t-1.ics"]
    else:
        with pytest.raises(errors.SyncTokenInvalid):
            await client.sync(token)
    listing = await client.sync(None)
    assert listing.complete
    assert len(listing.items) == 1


async def test_bogus_token_is_stale_then_full_listing_works(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """A made-up token is stale (an error or a complete listing); a full listing still works."""
    await client.put(None, ics("t-1"), etag=None, create=True)
    await _stale_token_reads_in_full(client, caldav_calendar.server, "http://example.invalid/s/1")


async def test_token_of_another_calendar_is_stale(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """A real token from a different collection is stale here: an error or a complete listing."""
    await client.put(None, ics("t-1"), etag=None, create=True)
    other = make_calendar(caldav_calendar.dav)
    async with CalDAVClient(other.url, other.username, other.password) as foreign:
        # Two items: Cyrus' tokens are "<uidvalidity>-<modseq>", so a calendar made in the
        # same second with as many changes as ours would hold a token equal to ours.
        for uid in ("elsewhere-1", "elsewhere-2"):
            await foreign.put(None, ics(uid), etag=None, create=True)
        stale = (await foreign.sync(None)).token
    assert stale
    assert stale != (await client.sync(None)).token
    await _stale_token_reads_in_full(client, caldav_calendar.server, stale)


@pytest.mark.slow
async def test_listing_fetches_in_multiget_chunks(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """120 items are listed with one sync REPORT and two multigets of at most 100."""
    sem = asyncio.Semaphore(4)

    async def create(n: int) -> None:
        async with sem:
            await client.put(None, ics(f"bulk-{n:03}"), etag=None, create=True)

    await asyncio.gather(*(create(n) for n in range(120)))
    before = caldav_calendar.settled_exchanges()
    listing = await client.sync(None)
    assert len({i.href for i in listing.items}) == 120
    assert listing.unreadable == ()
    assert reports(caldav_calendar, before) == ["REPORT", "REPORT", "REPORT"]


async def test_missing_hrefs_are_asked_again_then_reported(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """A multiget that leaves an href out is repeated once for it; still missing = unreadable."""
    href, etag = await client.put(None, ics("m-1"), etag=None, create=True)
    ghost = client.path + "ghost.ics"
    before = caldav_calendar.settled_exchanges()
    items, unreadable = await client.fetch({href: etag, ghost: '"e"'})
    assert [i.href for i in items] == [href]
    assert [(u.href, u.etag) for u in unreadable] == [(ghost, '"e"')]
    assert reports(caldav_calendar, before) == ["REPORT", "REPORT"]


async def test_hrefs_with_odd_characters_round_trip(
    client: CalDAVClient, caldav_calendar: CalendarHandle
) -> None:
    """An item stored by someone else at 'a b+c@d.ics' is listed, fetched and deletable."""
    status, href = caldav_calendar.put_raw("a b+c@d.ics", ics("odd"))
    assert status in (200, 201, 204)
    (item,) = (await client.sync(None)).items
    assert item.href == href
    assert "UID:odd" in item.text
    await client.delete(item.href, item.etag)
    assert (await client.sync(None)).items == ()


async def test_cyrus_uid_in_another_calendar_of_the_account_is_invalid_request(
    cyrus_calendar: CalendarHandle,
) -> None:
    """Cyrus refuses a UID another calendar of the same account holds: InvalidRequest
    (a dead letter, not a race to re-read), with the reason in one line."""
    other = make_calendar(cyrus_calendar.dav)
    cal = cyrus_calendar
    async with (
        CalDAVClient(cal.url, cal.username, cal.password) as first,
        CalDAVClient(other.url, other.username, other.password) as second,
    ):
        await first.put(None, ics("shared-uid"), etag=None, create=True)
        with pytest.raises(errors.InvalidRequest) as caught:
            await second.put(None, ics("shared-uid"), etag=None, create=True)
        assert (await second.sync(None)).items == ()
    assert caught.value.status == 403
    assert caught.value.code == quirks.UNIQUE_SCHEDULING_OBJECT
    assert "another calendar of this account already holds this UID" in str(caught.value)
