"""End to end through the real webhook, Redis, arq workers, sandbox and CalDAV servers.

Each test runs against Radicale, Xandikos, Cyrus and DAViCal (the ``caldav_calendar``
fixture is parametrised). After every change, a further reconcile must write nothing on either side.
"""

from __future__ import annotations

import asyncio

import structlog.testing

from syncd import queue
from syncd.model import BindingRef, Side
from syncd.observability import REGISTRY
from syncd.store.redis import RedisStore
from tests.fixtures.spine import REF, STANDUP_ICS, Spine, summaries, timed_event


async def _assert_quiet(spine: Spine) -> None:
    """A poll-triggered reconcile right after a sync writes nothing anywhere."""
    before = spine.writes()
    await spine.settle(poll=True)
    assert spine.writes() == before


async def test_dingtalk_changes_reach_caldav(spine: Spine) -> None:
    """Create, update and delete in DingTalk flow to CalDAV via callbacks; then quiet."""
    created = await spine.api.create("u-alice", timed_event("Design review", day=22))
    await spine.settle()
    items = (await spine.caldav_items()).items
    assert summaries(items) == ["Design review"]
    text = items[0].text
    assert "DTSTART;TZID=Asia/Shanghai:20270122T100000" in text.replace("\r\n ", "")
    await _assert_quiet(spine)

    status, _ = await spine.api.call(
        "PUT",
        spine.api.events("u-alice", f"/{created['id']}"),
        json={"id": created["id"], "summary": "Design review (moved)"},
    )
    assert status == 200
    await spine.settle()
    assert summaries((await spine.caldav_items()).items) == ["Design review (moved)"]
    await _assert_quiet(spine)

    status, _ = await spine.api.call("DELETE", spine.api.events("u-alice", f"/{created['id']}"))
    assert status == 200
    await spine.settle()
    assert (await spine.caldav_items()).items == ()
    await _assert_quiet(spine)


ICS = STANDUP_ICS.replace("{location}", "Room 4")


async def test_caldav_changes_reach_dingtalk(spine: Spine) -> None:
    """Create, update and delete in a CalDAV client flow to DingTalk on the poll; then quiet."""
    status, _ = spine.calendar.put_raw("standup.ics", ICS.format(summary="Standup"))
    assert status in (201, 204)
    await spine.settle(poll=True)
    [event] = spine.dingtalk_events()
    assert event["summary"] == "Standup"
    assert event["location"]["displayName"] == "Room 4"
    assert event["start"]["timeZone"] == "Europe/Berlin"
    assert event["start"]["dateTime"].startswith("2027-01-23T09:15:00")
    await _assert_quiet(spine)

    status, _ = spine.calendar.put_raw("standup.ics", ICS.format(summary="Standup (new room)"))
    assert status in (201, 204)
    await spine.settle(poll=True)
    assert [e["summary"] for e in spine.dingtalk_events()] == ["Standup (new room)"]
    await _assert_quiet(spine)

    assert spine.calendar.delete_raw("standup.ics") in (200, 204)
    await spine.settle(poll=True)
    assert spine.dingtalk_events() == []
    await _assert_quiet(spine)


async def test_caldav_deletion_behind_a_stale_cursor_is_found_in_one_run(spine: Spine) -> None:
    """A CalDAV deletion made while the stored sync token went stale reaches DingTalk in
    the very next run, with no daily full reconcile needed.

    DAViCal answers the unknown token with a plain listing (no removals): read as a full
    listing, the missing item counts as deleted. The others refuse the token, and the run
    lists in full instead.
    """
    for uid, summary in (("keep@client.example", "Keep"), ("drop@client.example", "Drop")):
        text = ICS.format(summary=summary).replace("standup-1@client.example", uid)
        assert spine.calendar.put_raw(f"{summary.lower()}.ics", text)[0] in (201, 204)
    await spine.settle(poll=True)
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == ["Drop", "Keep"]
    await RedisStore(spine.pool).set_cursors(REF, {Side.CALDAV: "data:,987654321"})
    assert spine.calendar.delete_raw("drop.ics") in (200, 204)
    await queue.request_reconcile(spine.pool, REF, "poll")
    await spine.run_worker()  # one run
    assert [e["summary"] for e in spine.dingtalk_events()] == ["Keep"]
    await _assert_quiet(spine)


async def test_status_after_sync(spine: Spine) -> None:
    """After a reconcile the store reports the pair and a successful run."""
    await spine.api.create("u-alice", timed_event("Retro", day=24))
    await spine.settle()
    store = RedisStore(spine.pool)
    ref = BindingRef("acme", "alice-work")
    pairs = await store.load_pairs(ref)
    assert len(pairs) == 1
    status = await store.get_status(ref)
    assert status.state == "ok"


async def test_two_workers_racing_create_no_duplicates(spine: Spine) -> None:
    """Two workers draining the queue at once: each event exists once on each side."""
    for day in range(10, 16):
        await spine.api.create("u-alice", timed_event(f"Meeting {day}", day=day))
    status, _ = spine.calendar.put_raw("local.ics", ICS.format(summary="Local"))
    assert status in (201, 204)
    await spine.sandbox.sandbox.drain()
    await queue.request_reconcile(spine.pool, REF, "poll")
    await asyncio.gather(spine.run_worker(), spine.run_worker())
    await spine.settle(poll=True)
    names = summaries((await spine.caldav_items()).items)
    assert names == sorted(["Local", *(f"Meeting {d}" for d in range(10, 16))])
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == names
    await _assert_quiet(spine)


async def test_callback_during_a_running_reconcile_is_not_lost(spine: Spine) -> None:
    """A change pushed while a reconcile runs reaches CalDAV through a follow-up run.

    No poll is requested: if the push during the run were coalesced away (arq refuses a
    job id while it runs), nothing would bring "Second" over.
    """
    await spine.api.create("u-alice", timed_event("First", day=12))
    await spine.sandbox.sandbox.drain()
    spine.sandbox.sandbox.set_faults(latency_ms=300)  # the run now takes over a second
    worker = asyncio.create_task(spine.run_worker())
    await asyncio.sleep(0.4)
    await spine.api.create("u-alice", timed_event("Second", day=13))
    await spine.sandbox.sandbox.drain()
    await worker
    spine.sandbox.sandbox.set_faults(latency_ms=0)
    await spine.settle()
    assert summaries((await spine.caldav_items()).items) == ["First", "Second"]


async def test_attendee_edits_only_send_their_answer(spine: Spine) -> None:
    """Alice attends Bob's meeting: her CalDAV edit sends her answer, not the new title."""
    body = {**timed_event("Bob's planning", day=18), "attendees": [{"id": "u-alice"}]}
    await spine.api.create("u-bob", body)
    await spine.settle()
    [item] = (await spine.caldav_items()).items
    assert "ORGANIZER" in item.text
    assert "bob@acme.example" in item.text
    unfolded = item.text.replace("\r\n ", "").replace("\n ", "")
    edited = unfolded.replace("SUMMARY:Bob's planning", "SUMMARY:My own title")
    edited = edited.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    assert edited != unfolded
    name = item.href.rsplit("/", 1)[1]
    status, _ = spine.calendar.put_raw(name, edited)
    assert status in (201, 204)
    await spine.settle(poll=True)
    [event] = spine.dingtalk_events("u-bob")
    assert event["summary"] == "Bob's planning"
    answers = {a["id"]: a["responseStatus"] for a in event["attendees"]}
    assert answers["u-alice"] == "accepted"
    await _assert_quiet(spine)


TODO = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTODO\r
UID:todo-1@client.example\r
DTSTAMP:20250101T000000Z\r
SUMMARY:Buy milk\r
END:VTODO\r
END:VCALENDAR\r
"""


async def test_an_item_that_cannot_sync_is_reported_and_the_rest_syncs(spine: Spine) -> None:
    """A CalDAV item with no event in it: a log line with the reason, a metric, no crash."""
    metric = ("syncd_item_errors_total", {"tenant": "acme", "side": "caldav", "error": "skipped"})
    before = REGISTRY.get_sample_value(metric[0], metric[1]) or 0.0
    assert spine.calendar.put_raw("todo.ics", TODO)[0] in (201, 204)
    assert spine.calendar.put_raw("ok.ics", ICS.format(summary="Still syncs"))[0] in (201, 204)
    with structlog.testing.capture_logs() as logs:
        await spine.settle(poll=True)
    assert [e["summary"] for e in spine.dingtalk_events()] == ["Still syncs"]
    skipped = [e for e in logs if e["event"] == "item_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["side"] == "caldav"
    assert skipped[0]["reason"]
    assert (REGISTRY.get_sample_value(metric[0], metric[1]) or 0.0) == before + 1


async def test_one_caldav_change_among_several_lists_no_members(spine: Spine) -> None:
    """A change in one of four CalDAV items reaches DingTalk without a PROPFIND of every
    member: the worker's CalDAV side asks for a few mapped hrefs the answer leaves out."""
    for n in range(4):
        text = ICS.replace("standup-1@", f"standup-{n}@").format(summary=f"Standup {n}")
        assert spine.calendar.put_raw(f"standup-{n}.ics", text)[0] in (201, 204)
    await spine.settle(poll=True)
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == [
        f"Standup {n}" for n in range(4)
    ]
    before = spine.calendar.settled_exchanges()
    edited = ICS.replace("standup-1@", "standup-2@").format(summary="Standup 2 (moved)")
    assert spine.calendar.put_raw("standup-2.ics", edited)[0] in (200, 201, 204)
    await spine.settle(poll=True)
    assert "Standup 2 (moved)" in {e["summary"] for e in spine.dingtalk_events()}
    methods = [e.method for e in spine.calendar.since(before)]
    assert "REPORT" in methods
    assert "PROPFIND" not in methods
    await _assert_quiet(spine)
