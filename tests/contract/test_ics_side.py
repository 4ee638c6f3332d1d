"""The CalendarSide contract, run by IcsSide against the local feed server (read-only).

What a writable side proves by writing, a feed proves by serving: an event a feed holds
(rendered by ``event_to_ical``, as a CalDAV server would hold it) is read back with the
same fingerprint. Writes are refused (``PermissionDenied``), a stale cursor is
``SyncTokenInvalid``, an unchanged feed is an empty incremental listing, a changed one a
complete listing, and a failed fetch raises instead of listing anything.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from syncd import errors
from syncd.adapters.ics.client import IcsClient
from syncd.adapters.ics.side import IcsSide
from syncd.model import Attendee, BindingRef, Changes, Event, Recurrence, Remote, Side
from syncd.observability import REGISTRY
from syncd.sync.ports import CalendarSide
from syncd.translate import Context, event_to_ical
from tests.fixtures.feed_server import FeedServer, vevent

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = Context(timezone="Asia/Shanghai")


def timed(uid: str = "evt-1", summary: str = "Standup") -> Event:
    """A plain timed event in Asia/Shanghai."""
    start = datetime(2027, 3, 3, 9, 30, tzinfo=SHANGHAI)
    return Event(uid=uid, summary=summary, start=start, end=start.replace(minute=59))


SHAPES = {
    "timed": timed(),
    "rich": dataclasses.replace(
        timed("rich-1", "Planning"),
        description="line one\nline two, with; punctuation",
        location="Room 3 / 北京",
        organizer="alice@acme.example",
        attendees=(Attendee("bob@acme.example", "Bob", "needs-action", optional=True),),
        reminders=(10, 60),
        privacy="private",
    ),
    "all-day": Event(uid="day-1", summary="Offsite", start=date(2027, 3, 1), end=date(2027, 3, 3)),
    "series": dataclasses.replace(
        timed("series-1", "Weekly"),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=10;BYDAY=WE", (datetime(2027, 3, 10, 9, 30, tzinfo=SHANGHAI),)
        ),
        overrides=(
            dataclasses.replace(
                timed("series-1", "Weekly (moved)"),
                start=datetime(2027, 3, 17, 14, 0, tzinfo=SHANGHAI),
                end=datetime(2027, 3, 17, 15, 0, tzinfo=SHANGHAI),
                recurrence_id=datetime(2027, 3, 17, 9, 30, tzinfo=SHANGHAI),
            ),
        ),
    ),
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_side(feed: FeedServer, session: aiohttp.ClientSession, **kw: object) -> IcsSide:
    identity = kw.pop("identity", "auto")
    client = IcsClient(session, feed.feed_url, **kw)  # type: ignore[arg-type]
    return IcsSide(client, CTX, identity)  # type: ignore[arg-type]


@pytest.fixture
def side(feed_server: FeedServer, session: aiohttp.ClientSession) -> IcsSide:
    return make_side(feed_server, session)


def inner(calendar_text: str) -> str:
    """The components of a VCALENDAR text (what goes into a feed)."""
    body = re.sub(r"\r?\n", "\n", calendar_text)
    start = body.index("BEGIN:", body.index("BEGIN:VCALENDAR") + 1)
    return body[start : body.rindex("END:VCALENDAR")]


def by_id(changes: Changes) -> dict[str, Remote]:
    return {r.id: r for r in changes.items}


def test_ics_side_is_a_read_only_calendar_side(side: IcsSide) -> None:
    """It takes the CalDAV slot of a binding and says it cannot be written."""
    port: CalendarSide = side
    assert port.side is Side.CALDAV
    assert side.writable is False


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_event_a_feed_holds_is_what_a_read_reports(
    side: IcsSide, feed_server: FeedServer, shape: str
) -> None:
    """The event rendered as CalDAV would hold it reads back with the same fingerprint."""
    event = SHAPES[shape]
    feed_server.components[event.uid] = inner(event_to_ical(event, CTX))
    changes = await side.changes(None)
    assert changes.complete
    (item,) = changes.items
    assert item.event is not None, item.error
    assert (item.id, item.event.uid) == (event.uid, event.uid)
    assert item.event.fingerprint() == event.fingerprint()


@pytest.mark.parametrize("write", ["create", "update", "delete"])
async def test_writes_are_refused(side: IcsSide, write: str) -> None:
    """Every write raises PermissionDenied with a one-line reason; nothing is sent."""
    calls = {
        "create": lambda: side.create(timed()),
        "update": lambda: side.update("evt-1", timed(), None),
        "delete": lambda: side.delete("evt-1", None),
    }
    with pytest.raises(errors.PermissionDenied, match="read-only"):
        await calls[write]()


async def test_unchanged_feed_is_an_empty_incremental_listing(
    side: IcsSide, feed_server: FeedServer
) -> None:
    """Second read with the cursor: one conditional GET answered 304, nothing reported."""
    feed_server.events = {"a": vevent("a", "A")}
    first = await side.changes(None)
    again = await side.changes(first.cursor)
    assert (again.items, again.deleted, again.complete) == ((), (), False)
    assert again.cursor == first.cursor
    assert feed_server.statuses() == [200, 304]


async def test_changed_feed_is_a_complete_listing_under_the_same_ids(
    side: IcsSide, feed_server: FeedServer
) -> None:
    """An edit keeps its id (UID) with a new fingerprint; a removed event is just absent."""
    feed_server.events = {"a": vevent("a", "A"), "b": vevent("b", "B")}
    first = await side.changes(None)
    feed_server.events = {"a": vevent("a", "A edited")}
    second = await side.changes(first.cursor)
    assert second.complete
    assert sorted(by_id(second)) == ["a"]
    old, new = by_id(first)["a"].event, by_id(second)["a"].event
    assert old is not None
    assert new is not None
    assert new.summary == "A edited"
    assert new.fingerprint() != old.fingerprint()


async def test_volatile_feed_reads_the_same_fingerprints(
    side: IcsSide, feed_server: FeedServer
) -> None:
    """A feed rewriting DTSTAMP/LAST-MODIFIED/PRODID/X-…-EXPORTED-AT: every fetch is a 200,
    and every item keeps its id and fingerprint."""
    feed_server.events = {"a": vevent("a", "A"), "b": vevent("b", "B", "20270106T100000Z")}
    feed_server.volatile = True
    first = await side.changes(None)
    second = await side.changes(first.cursor)
    assert feed_server.statuses() == [200, 200]
    prints = [{r.id: r.event.fingerprint() for r in c.items if r.event} for c in (first, second)]
    assert prints[0] == prints[1]
    assert len(prints[0]) == 2


async def test_regenerated_uids_keep_ids_and_uids_under_auto(
    side: IcsSide, feed_server: FeedServer
) -> None:
    """New UIDs on every fetch: from the second fetch on, each item carries its first uid."""
    feed_server.events = {"a": vevent("a", "A"), "b": vevent("b", "B", "20270106T100000Z")}
    feed_server.regenerate_uids = True
    reads = [await side.changes(None)]
    for _ in range(2):
        reads.append(await side.changes(reads[-1].cursor))
    uids = [sorted(r.event.uid for r in c.items if r.event) for c in reads]
    assert uids[0] == uids[1] == uids[2]
    assert sorted(by_id(reads[1])) == sorted(by_id(reads[2]))  # content ids, stable


async def test_bogus_cursor_is_stale(side: IcsSide) -> None:
    """A cursor the side cannot read raises SyncTokenInvalid (the runner re-lists)."""
    with pytest.raises(errors.SyncTokenInvalid):
        await side.changes("garbage")


async def test_untranslatable_item_is_reported_not_dropped(
    side: IcsSide, feed_server: FeedServer
) -> None:
    """A broken VEVENT is a Remote without event and with a reason; the rest is read."""
    feed_server.events = {"ok": vevent("ok", "Fine"), "bad": "UID:bad\nSUMMARY:No start"}
    changes = await side.changes(None)
    items = by_id(changes)
    assert items["ok"].event is not None
    assert items["bad"].event is None
    assert items["bad"].error


@pytest.mark.parametrize("fault", ["404", "500", "empty", "truncated", "html", "redirect-loop"])
async def test_a_failing_feed_raises_instead_of_listing(
    side: IcsSide, feed_server: FeedServer, fault: str
) -> None:
    """A fault never reads as a (smaller) listing: changes() raises a SyncdError."""
    feed_server.events = {"a": vevent("a", "A")}
    first = await side.changes(None)
    feed_server.fault = fault
    with pytest.raises(errors.SyncdError):
        await side.changes(first.cursor)


async def test_each_fetch_is_counted_by_outcome(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """syncd_ics_fetches_total counts fetched, not_modified and failed per binding."""
    ref = BindingRef("acme", f"metrics-{id(feed_server)}")
    side = IcsSide(IcsClient(session, feed_server.feed_url), CTX, "auto", ref)
    feed_server.events = {"a": vevent("a", "A")}
    first = await side.changes(None)
    await side.changes(first.cursor)
    feed_server.fault = "500"
    with pytest.raises(errors.SourceUnavailable):
        await side.changes(first.cursor)

    def count(outcome: str) -> float | None:
        labels = {"tenant": ref.tenant, "binding": ref.binding, "outcome": outcome}
        return REGISTRY.get_sample_value("syncd_ics_fetches_total", labels)

    assert (count("fetched"), count("not_modified"), count("failed")) == (1.0, 1.0, 1.0)
