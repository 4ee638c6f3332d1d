"""DingTalkSide against the sandbox: round trips keep fingerprints, deltas are minimal."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import aiohttp
import pytest
import redis.asyncio as aredis

from syncd.adapters.dingtalk import _series
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd.errors import RateLimited
from syncd.model import Attendee, Event, Recurrence
from syncd.translate import Context, Directory
from tests.fixtures.dingtalk_side import CTX, AliceSide, alice_client, meeting
from tests.fixtures.listing import fingerprint, only
from tests.fixtures.sandbox import USERS, SandboxHandle


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


async def test_series_update_does_not_rewrite_held_exceptions(alice: AliceSide) -> None:
    """Renaming a series patches the master only; its exceptions are already held."""
    written = await alice.side.create(series())
    cursor = (await alice.side.changes(None)).cursor
    before = alice.requests()
    renamed = dataclasses.replace(series(), description="new agenda")
    again = await alice.side.update(written.id, renamed, None)
    after = alice.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 1
    assert after.get("DeleteEvent", 0) == before.get("DeleteEvent", 0)
    remote = only(await alice.side.changes(cursor), written.id)
    assert fingerprint(remote) == again.event.fingerprint()
    assert remote.event is not None
    assert remote.event.description == "new agenda"
    assert len(remote.event.overrides) == 1
    assert remote.event.overrides[0].description == "Agenda:\n1. numbers"  # its own, kept
    before = alice.requests()
    twice = await alice.side.update(written.id, renamed, None)
    after = alice.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 1  # the master only
    assert after.get("ListInstances", 0) == before.get("ListInstances", 0)
    assert twice.event.fingerprint() == again.event.fingerprint()


async def test_series_update_patches_a_changed_exception(alice: AliceSide) -> None:
    """An exception edited in the event is patched (only it), and reads back as written."""
    written = await alice.side.create(series())
    cursor = (await alice.side.changes(None)).cursor
    base = series()
    edited = dataclasses.replace(
        base, overrides=(dataclasses.replace(base.overrides[0], summary="Standup (later)"),)
    )
    before = alice.requests()
    again = await alice.side.update(written.id, edited, None)
    after = alice.requests()
    assert after["PatchEvent"] - before["PatchEvent"] == 2  # the master and that exception
    remote = only(await alice.side.changes(cursor), written.id)
    assert fingerprint(remote) == again.event.fingerprint()
    assert remote.event is not None
    assert [o.summary for o in remote.event.overrides] == ["Standup (later)"]


async def test_foreign_edit_of_one_occurrence_reports_the_series(alice: AliceSide) -> None:
    """An occurrence edited in DingTalk shows up as a change of its whole series."""
    written = await alice.side.create(series())
    cursor = (await alice.side.changes(None)).cursor
    start = series().start
    assert isinstance(start, datetime)
    fourth = start + timedelta(days=4)
    instances = await alice.client.list_instances(
        "u-alice", written.id, time_min=fourth - timedelta(hours=1),
        time_max=fourth + timedelta(hours=1),
    )  # fmt: skip
    await alice.client.patch_event("u-alice", instances[0]["id"], {"summary": "Retro"})
    delta = await alice.side.changes(cursor)
    remote = only(delta, written.id)
    assert remote.event is not None
    assert {o.summary for o in remote.event.overrides} == {"Standup (late)", "Retro"}


async def test_many_attendees_are_read_completely(alice: AliceSide) -> None:
    """An event with 150 attendees (over the list cap of 100) reads back with all of them."""
    people = tuple(Attendee(f"dt-x{i:03d}@example.org") for i in range(150))
    ctx_people = {f"u-x{i:03d}": f"dt-x{i:03d}@example.org" for i in range(150)}
    ctx = Context(Directory({**USERS, **ctx_people}), user="u-alice", timezone="Asia/Shanghai")
    side = DingTalkSide(alice.client, "u-alice", ctx)
    written = await side.create(meeting(attendees=people))
    assert len(written.event.attendees) == 150
    remote = only(await side.changes(None), written.id)
    assert remote.event is not None
    assert len(remote.event.attendees) == 150
    assert fingerprint(remote) == written.event.fingerprint()


async def test_full_listing_covers_two_windows(alice: AliceSide) -> None:
    """Events 100 days ago and 300 days ahead are listed (two ≤1-year windows); 400 are not."""
    past = await alice.side.create(meeting("past", days=-100))
    far = await alice.side.create(meeting("far", days=300))
    beyond = await alice.side.create(meeting("beyond", days=400))
    before = alice.requests().get("ListEvents", 0)
    full = await alice.side.changes(None)
    ids = {r.id for r in full.items}
    assert {past.id, far.id} <= ids
    assert beyond.id not in ids
    assert alice.requests()["ListEvents"] - before == 2


async def test_full_listing_over_many_pages_reads_as_one_grouped_listing(
    alice: AliceSide,
) -> None:
    """A full listing is translated page by page as it arrives (peak memory); what it
    reports equals translating the whole listing at once: 230 events over 3 pages, a
    series with a moved and a cancelled occurrence, a deleted event, two windows."""
    written = [await alice.side.create(meeting(f"m{i}", days=1 + i % 20)) for i in range(230)]
    standup = await alice.side.create(series(days=25))
    far = await alice.side.create(meeting("far", days=300))
    await alice.side.delete(written[7].id, None)
    before = alice.requests().get("ListEvents", 0)
    full = await alice.side.changes(None)
    assert alice.requests()["ListEvents"] - before >= 4  # 3 pages + the second window
    at_once = _series.Grouped()
    assert full.window is not None
    for low, high in _series.windows(*full.window):
        for item in (await alice.client.list_events("u-alice", time_min=low, time_max=high)).events:
            at_once.add(item)
    items, deleted = await alice.side._build(at_once)
    assert {(r.id, r.etag, fingerprint(r)) for r in full.items} == {
        (r.id, r.etag, fingerprint(r)) for r in items
    }
    assert sorted(full.deleted) == sorted(deleted)
    assert written[7].id in full.deleted
    assert {standup.id, far.id} <= {r.id for r in full.items}
    assert len(only(full, standup.id).event.overrides) == 1  # type: ignore[union-attr]


async def test_failed_series_create_is_rolled_back(
    sandbox: SandboxHandle, redis_client: aredis.Redis
) -> None:
    """When writing a new series' exceptions fails, the master is deleted again (no duplicate)."""
    async with aiohttp.ClientSession() as session:
        client = alice_client(session, sandbox, redis_client, max_retries=2)
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
