"""DingTalkSide against the sandbox: round trips keep fingerprints, deltas are minimal."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aredis

from syncd.adapters.dingtalk import DingTalkClient, TokenCache
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd.errors import EtagMismatch, RateLimited, SyncTokenInvalid
from syncd.model import Attendee, Changes, Event, Recurrence, Remote
from syncd.store.tokens import TokenStore
from syncd.translate import Context, Directory
from tests.fixtures.sandbox import USERS, SandboxHandle

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = Context(Directory(USERS), user="u-alice", timezone="Asia/Shanghai")


async def _no_sleep(delay: float) -> None:
    return None


@dataclass
class Bench:
    """Alice's DingTalk side, the raw client under it, and the sandbox."""

    side: DingTalkSide
    client: DingTalkClient
    handle: SandboxHandle

    def requests(self) -> dict[str, int]:
        return dict(self.handle.sandbox.stats()["requests"])


@pytest.fixture
async def bench(sandbox: SandboxHandle, redis_client: aredis.Redis) -> AsyncIterator[Bench]:
    """A DingTalkSide for u-alice on a fresh sandbox (token already fetched)."""
    async with aiohttp.ClientSession() as session:
        client = DingTalkClient(session, sandbox.url, sandbox.app_key, sandbox.app_secret,
                                TokenCache(TokenStore(redis_client)), sleep=_no_sleep)  # fmt: skip
        await client.list_calendars("u-alice")
        yield Bench(DingTalkSide(client, "u-alice", CTX), client, sandbox)


def at(days: int, hour: int = 10) -> datetime:
    """Shanghai wall time ``days`` from today at ``hour``:00."""
    today = datetime.now(SHANGHAI).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


def meeting(summary: str = "Planning", days: int = 3, **changes: object) -> Event:
    """A timed meeting organised by Alice with Bob invited and a 15-minute reminder."""
    start = at(days)
    base = Event(
        uid="caldav-uid-1@example",
        summary=summary,
        start=start,
        end=start + timedelta(hours=1),
        description="Agenda:\n1. numbers",
        location="Room 5",
        organizer="alice@acme.example",
        attendees=(Attendee("bob@acme.example", "Bob"),),
        reminders=(15,),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def only(changes: Changes, item_id: str) -> Remote:
    """The one Remote with ``item_id``."""
    found = [r for r in changes.items if r.id == item_id]
    assert len(found) == 1, changes
    return found[0]


def fp(remote: Remote) -> str:
    """Fingerprint of a translated Remote."""
    assert remote.event is not None, remote.error
    return remote.event.fingerprint()


async def test_create_then_read_keeps_the_fingerprint(bench: Bench) -> None:
    """Written.event of a create has the fingerprint the next full listing reports."""
    written = await bench.side.create(meeting())
    assert written.event.uid == "caldav-uid-1@example"
    full = await bench.side.changes(None)
    assert full.complete
    assert full.cursor
    remote = only(full, written.id)
    assert fp(remote) == written.event.fingerprint()
    assert remote.etag == written.etag
    assert remote.event is not None
    assert remote.event.summary == "Planning"
    assert [a.email for a in remote.event.attendees] == ["bob@acme.example"]


async def test_unchanged_calendar_costs_one_request_and_reports_nothing(bench: Bench) -> None:
    """With nothing changed, changes(cursor) is one ListEvents call and an empty delta."""
    await bench.side.create(meeting())
    full = await bench.side.changes(None)
    before = bench.requests()
    delta = await bench.side.changes(full.cursor)
    after = bench.requests()
    spent = {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}
    assert spent == {"ListEvents": 1}
    assert delta.items == ()
    assert delta.deleted == ()
    assert not delta.complete
    assert delta.cursor


async def test_update_and_delete_round_trip_through_the_delta(bench: Bench) -> None:
    """An update reads back with Written's fingerprint; a delete arrives as a deleted id."""
    first = await bench.side.create(meeting())
    other = await bench.side.create(meeting("Other", days=5))
    cursor = (await bench.side.changes(None)).cursor
    changed = meeting("Planning (moved)", days=4, description="", location="",
                      attendees=(), reminders=())  # fmt: skip
    written = await bench.side.update(first.id, changed, None)
    assert written.event.fingerprint() != first.event.fingerprint()
    delta = await bench.side.changes(cursor)
    remote = only(delta, first.id)
    assert fp(remote) == written.event.fingerprint()
    assert remote.event is not None
    assert (remote.event.description, remote.event.location) == ("", "")
    assert remote.event.attendees == ()
    assert remote.event.reminders == ()
    assert other.id not in {r.id for r in delta.items}

    await bench.side.delete(other.id, None)
    await bench.side.delete(other.id, None)  # gone is fine
    gone = await bench.side.changes(delta.cursor)
    assert gone.deleted == (other.id,)
    assert gone.items == ()


async def test_all_day_event_round_trip(bench: Bench) -> None:
    """A two-day all-day event keeps its dates and fingerprint through DingTalk."""
    day = at(7).date()
    event = Event(uid="u2", summary="Offsite", start=day, end=day + timedelta(days=2),
                  organizer="alice@acme.example")  # fmt: skip
    written = await bench.side.create(event)
    remote = only(await bench.side.changes(None), written.id)
    assert remote.event is not None
    assert (remote.event.start, remote.event.end) == (day, day + timedelta(days=2))
    assert fp(remote) == written.event.fingerprint()


def series(days: int = 2) -> Event:
    """A daily 5-occurrence series with one moved occurrence and one cancelled one."""
    base = meeting("Standup", days=days, attendees=(), reminders=())
    start = base.start
    assert isinstance(start, datetime)
    moved_rid = start + timedelta(days=1)
    moved = dataclasses.replace(
        base, summary="Standup (late)", start=moved_rid + timedelta(hours=3),
        end=moved_rid + timedelta(hours=4), recurrence_id=moved_rid,
    )  # fmt: skip
    return dataclasses.replace(
        base,
        recurrence=Recurrence("FREQ=DAILY;COUNT=5", exdates=(start + timedelta(days=3),)),
        overrides=(moved,),
    )


async def test_series_with_exceptions_round_trip(bench: Bench) -> None:
    """A series with a moved and a cancelled occurrence reads back as written."""
    written = await bench.side.create(series())
    assert len(written.event.overrides) == 1
    assert written.event.recurrence is not None
    assert len(written.event.recurrence.exdates) == 1
    full = await bench.side.changes(None)
    assert [r.id for r in full.items] == [written.id]  # exceptions folded into the series
    assert fp(full.items[0]) == written.event.fingerprint()
    quiet = await bench.side.changes(full.cursor)
    assert quiet.items == ()


async def test_series_update_does_not_rewrite_held_exceptions(bench: Bench) -> None:
    """Renaming a series patches the master only; its exceptions are already held."""
    written = await bench.side.create(series())
    cursor = (await bench.side.changes(None)).cursor
    before = bench.requests()
    renamed = dataclasses.replace(series(), description="new agenda")
    again = await bench.side.update(written.id, renamed, None)
    after = bench.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 1
    assert after.get("DeleteEvent", 0) == before.get("DeleteEvent", 0)
    remote = only(await bench.side.changes(cursor), written.id)
    assert fp(remote) == again.event.fingerprint()
    assert remote.event is not None
    assert remote.event.description == "new agenda"
    assert len(remote.event.overrides) == 1
    assert remote.event.overrides[0].description == "Agenda:\n1. numbers"  # its own, kept
    before = bench.requests()
    twice = await bench.side.update(written.id, renamed, None)
    after = bench.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 1  # the master only
    assert after.get("ListInstances", 0) == before.get("ListInstances", 0)
    assert twice.event.fingerprint() == again.event.fingerprint()


async def test_series_update_patches_a_changed_exception(bench: Bench) -> None:
    """An exception edited in the event is patched (only it), and reads back as written."""
    written = await bench.side.create(series())
    cursor = (await bench.side.changes(None)).cursor
    base = series()
    edited = dataclasses.replace(
        base, overrides=(dataclasses.replace(base.overrides[0], summary="Standup (later)"),)
    )
    before = bench.requests()
    again = await bench.side.update(written.id, edited, None)
    after = bench.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 2  # the master and that exception
    remote = only(await bench.side.changes(cursor), written.id)
    assert fp(remote) == again.event.fingerprint()
    assert remote.event is not None
    assert [o.summary for o in remote.event.overrides] == ["Standup (later)"]


async def test_foreign_edit_of_one_occurrence_reports_the_series(bench: Bench) -> None:
    """An occurrence edited in DingTalk shows up as a change of its whole series."""
    written = await bench.side.create(series())
    cursor = (await bench.side.changes(None)).cursor
    start = series().start
    assert isinstance(start, datetime)
    fourth = start + timedelta(days=4)
    instances = await bench.client.list_instances(
        "u-alice", written.id, time_min=fourth - timedelta(hours=1),
        time_max=fourth + timedelta(hours=1),
    )  # fmt: skip
    await bench.client.patch_event("u-alice", instances[0]["id"], {"summary": "Retro"})
    delta = await bench.side.changes(cursor)
    remote = only(delta, written.id)
    assert remote.event is not None
    assert {o.summary for o in remote.event.overrides} == {"Standup (late)", "Retro"}


async def test_many_attendees_are_read_completely(bench: Bench) -> None:
    """An event with 150 attendees (over the list cap of 100) reads back with all of them."""
    people = tuple(Attendee(f"dt-x{i:03d}@example.org") for i in range(150))
    ctx_people = {f"u-x{i:03d}": f"dt-x{i:03d}@example.org" for i in range(150)}
    ctx = Context(Directory({**USERS, **ctx_people}), user="u-alice", timezone="Asia/Shanghai")
    side = DingTalkSide(bench.client, "u-alice", ctx)
    written = await side.create(meeting(attendees=people))
    assert len(written.event.attendees) == 150
    remote = only(await side.changes(None), written.id)
    assert remote.event is not None
    assert len(remote.event.attendees) == 150
    assert fp(remote) == written.event.fingerprint()


async def test_stale_cursor_raises_sync_token_invalid(bench: Bench) -> None:
    """An expired syncToken surfaces as SyncTokenInvalid; a full re-list then works."""
    cursor = (await bench.side.changes(None)).cursor
    bench.handle.sandbox.expire_sync_tokens()
    with pytest.raises(SyncTokenInvalid):
        await bench.side.changes(cursor)
    assert (await bench.side.changes(None)).complete


async def test_update_with_stale_etag_is_refused(bench: Bench) -> None:
    """update() with an updateTime that has moved on raises EtagMismatch (naming the event,
    the updateTime asked for and the current one) and writes nothing."""
    written = await bench.side.create(meeting())
    assert written.etag
    await bench.client.patch_event("u-alice", written.id, {"summary": "someone else"})
    with pytest.raises(EtagMismatch) as lost:
        await bench.side.update(written.id, meeting("mine"), written.etag)
    current = only(await bench.side.changes(None), written.id)
    assert (lost.value.href, lost.value.etag) == (written.id, written.etag)
    assert lost.value.current_etag == current.etag
    assert current.event is not None
    assert current.event.summary == "someone else"
    ok = await bench.side.update(written.id, meeting("mine"), current.etag)
    assert ok.event.summary == "mine"


async def test_full_listing_covers_two_windows(bench: Bench) -> None:
    """Events 100 days ago and 300 days ahead are listed (two ≤1-year windows); 400 are not."""
    past = await bench.side.create(meeting("past", days=-100))
    far = await bench.side.create(meeting("far", days=300))
    beyond = await bench.side.create(meeting("beyond", days=400))
    before = bench.requests().get("ListEvents", 0)
    full = await bench.side.changes(None)
    ids = {r.id for r in full.items}
    assert {past.id, far.id} <= ids
    assert beyond.id not in ids
    assert bench.requests()["ListEvents"] - before == 2


async def test_deleted_event_is_reported_in_a_full_listing_too(bench: Bench) -> None:
    """A cancelled tombstone is never an item; a full listing names it as deleted."""
    written = await bench.side.create(meeting())
    await bench.side.delete(written.id, None)
    full = await bench.side.changes(None)
    assert written.id not in {r.id for r in full.items}
    assert written.id in full.deleted


async def test_untranslatable_event_is_reported_not_raised(bench: Bench) -> None:
    """An event DingTalk holds but translate rejects becomes Remote(error=...), others flow."""
    good = await bench.side.create(meeting())
    raw = await bench.client.create_event("u-alice", {
        "summary": "odd", "start": {"date": at(2).date().isoformat()},
        "end": {"date": at(3).date().isoformat()}, "isAllDay": True,
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "noEnd"}},
    })  # fmt: skip
    # Damage the stored series the way a future DingTalk field might: an unknown weekday.
    stored = bench.handle.sandbox.state.events[raw["id"]]
    stored.fields["recurrence"]["pattern"]["firstDayOfWeek"] = "someday"
    full = await bench.side.changes(None)
    bad = only(full, raw["id"])
    assert bad.event is None
    assert bad.error
    assert "someday" in bad.error
    assert only(full, good.id).event is not None


async def test_failed_series_create_is_rolled_back(
    sandbox: SandboxHandle, redis_client: aredis.Redis
) -> None:
    """When writing a new series' exceptions fails, the master is deleted again (no duplicate)."""
    async with aiohttp.ClientSession() as session:
        tokens = TokenCache(TokenStore(redis_client))
        client = DingTalkClient(session, sandbox.url, sandbox.app_key, sandbox.app_secret,
                                tokens, max_retries=2, sleep=_no_sleep)  # fmt: skip
        await client.list_calendars("u-alice")
        side = DingTalkSide(client, "u-alice", CTX)
        event = series()
        second = dataclasses.replace(
            event.overrides[0],
            recurrence_id=event.overrides[0].recurrence_id + timedelta(days=1),  # type: ignore[operator]
            summary="Standup (later)",
        )
        event = dataclasses.replace(event, overrides=(*event.overrides, second))
        sandbox.sandbox.set_faults(qps_limit=1)  # the second PatchEvent within 1 s is throttled
        with pytest.raises(RateLimited):
            await side.create(event)
        sandbox.sandbox.set_faults(qps_limit=None)
        assert sandbox.sandbox.stats()["requests"]["DeleteEvent"] == 1
        assert sandbox.sandbox.events_of("u-alice") == []
