"""Busy mirrors, filters and the summary prefix end to end: the real webhook, Redis, arq
worker, the DingTalk sandbox and Radicale.

Every case counts the write requests each step causes (DingTalk create/patch/delete/respond
calls at the sandbox, CalDAV PUT/DELETE at Radicale), so the figures in
docs/mirrors-and-filters.md are what these assertions pin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
import structlog.testing

from syncd.config import load_config
from syncd.observability import REGISTRY
from tests.fixtures.spine import Spine, write_config

pytestmark = pytest.mark.parametrize("caldav_calendar", ["radicale"], indirect=True)


def timed(summary: str, day: int, hour: int = 10, **extra: Any) -> dict[str, Any]:
    """A one-hour meeting on 2027-01-<day> in Asia/Shanghai (inside every sync window)."""

    def at(h: int) -> dict[str, str]:
        return {"dateTime": f"2027-01-{day:02d}T{h:02d}:00:00+08:00", "timeZone": "Asia/Shanghai"}

    return {"summary": summary, "start": at(hour), "end": at(hour + 1), **extra}


def shaped(spine: Spine, tmp_path: Path, **binding: str) -> None:
    """Re-wire the spine's binding with ``binding`` settings (YAML flow values)."""
    cal = spine.calendar
    root = write_config(
        tmp_path / "shaped",
        spine.sandbox,
        cal.url,
        spine.config.settings.redis_url,
        auth=cal.auth,
        **binding,
    )
    spine.config = load_config(root, {})


async def caldav_events(spine: Spine) -> dict[str, icalendar.Event]:
    """The calendar's VEVENTs (masters) by summary."""
    out = {}
    for item in (await spine.caldav_items()).items:
        for ev in icalendar.Calendar.from_ical(item.text).walk("VEVENT"):
            if "RECURRENCE-ID" not in ev:
                out[str(ev["SUMMARY"])] = ev
    return out


async def edit_caldav(
    spine: Spine, summary: str, *, new: str | None = None, hours: int = 0
) -> None:
    """Edit the CalDAV item titled ``summary`` as another client would."""
    for item in (await spine.caldav_items()).items:
        cal = icalendar.Calendar.from_ical(item.text)
        events = [e for e in cal.walk("VEVENT") if str(e["SUMMARY"]) == summary]
        if not events:
            continue
        for ev in events:
            if new is not None:
                ev["SUMMARY"] = icalendar.vText(new)
            for key in ("DTSTART", "DTEND"):
                when: datetime = ev[key].dt
                del ev[key]
                ev.add(key, when + timedelta(hours=hours))
        status, _ = spine.calendar.put_raw(item.href.rsplit("/", 1)[-1], cal.to_ical().decode())
        assert status in (201, 204)
        return
    raise AssertionError(f"no CalDAV item {summary!r}")


async def patch_dingtalk(spine: Spine, user: str, event_id: str, **body: Any) -> None:
    """PatchEvent in DingTalk as its app would."""
    path = spine.api.events(user, f"/{event_id}")
    status, data = await spine.api.call("PUT", path, json={"id": event_id, **body})
    assert status == 200, data


async def step(spine: Spine, *, poll: bool = False) -> dict[str, int]:
    """Deliver callbacks and run workers until quiet; the writes it took, per side."""
    before = spine.writes()
    await spine.settle(poll=poll)
    after = spine.writes()
    return {side: after[side] - before[side] for side in after}


def dt_summaries(spine: Spine) -> list[str]:
    return sorted(e["summary"] for e in spine.dingtalk_events())


NONE = {"dingtalk": 0, "caldav": 0}


async def test_busy_mirror_moves_time_only(spine: Spine, tmp_path: Path) -> None:
    """mirror: busy, both ways: the CalDAV copy is "Busy" with no details; a title change
    in DingTalk writes nothing; a time change writes CalDAV once; moving the copy in CalDAV
    moves the DingTalk event once and leaves its real title alone."""
    shaped(spine, tmp_path, mirror="busy")
    body = timed("Board meeting", 22, description="layoffs", location={"displayName": "HQ"})
    created = await spine.api.create("u-alice", body)
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    (copy,) = (await caldav_events(spine)).values()
    assert str(copy["SUMMARY"]) == "Busy"
    assert {"DESCRIPTION", "LOCATION", "ATTENDEE", "ORGANIZER", "VALARM"}.isdisjoint(copy.keys())
    assert copy["DTSTART"].dt.hour == 10

    await patch_dingtalk(spine, "u-alice", created["id"], summary="Reorg", description="x")
    assert await step(spine) == NONE

    await patch_dingtalk(
        spine,
        "u-alice",
        created["id"],
        **{k: v for k, v in timed("Reorg", 22, hour=14).items() if k in ("start", "end")},
    )
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert (await caldav_events(spine))["Busy"]["DTSTART"].dt.hour == 14

    await edit_caldav(spine, "Busy", hours=2, new="peeking")
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    (event,) = spine.dingtalk_events()
    assert (event["summary"], event["description"]) == ("Reorg", "x")
    assert event["start"]["dateTime"].startswith("2027-01-22T16:00")
    assert await step(spine, poll=True) == NONE


async def test_decline_removes_the_copy_and_accepting_brings_it_back(
    spine: Spine, tmp_path: Path
) -> None:
    """skip_declined: Alice declines Bob's meeting -> its CalDAV copy is deleted (the
    DingTalk event stays); she accepts again -> the copy is back."""
    shaped(spine, tmp_path, filter="{skip_declined: true}")
    meeting = await spine.api.create(
        "u-bob", timed("Planning", 23, attendees=[{"id": "u-alice"}, {"id": "u-bob"}])
    )
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert list(await caldav_events(spine)) == ["Planning"]

    path = spine.api.events("u-alice", f"/{meeting['id']}/respond")
    status, _ = await spine.api.call("POST", path, json={"responseStatus": "declined"})
    assert status == 200
    removed = {"tenant": "acme", "side": "dingtalk", "outcome": "removed"}
    before = REGISTRY.get_sample_value("syncd_items_filtered_total", removed) or 0.0
    with structlog.testing.capture_logs() as logs:
        assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert await caldav_events(spine) == {}
    assert dt_summaries(spine) == ["Planning"]
    assert REGISTRY.get_sample_value("syncd_items_filtered_total", removed) == before + 1
    (line,) = [e for e in logs if e["event"] == "item_filtered"]
    assert (line["side"], line["reason"]) == ("caldav", "filtered: declined by the bound user")
    assert await step(spine, poll=True) == NONE

    status, _ = await spine.api.call("POST", path, json={"responseStatus": "accepted"})
    assert status == 200
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert list(await caldav_events(spine)) == ["Planning"]


async def test_all_day_and_excluded_events_stay_on_their_side(spine: Spine, tmp_path: Path) -> None:
    """skip_all_day + exclude_summary: such events are never copied either way; an event
    renamed to match loses its copy, and renamed back gets it again."""
    shaped(spine, tmp_path, filter='{skip_all_day: true, exclude_summary: ["(?i)^private:"]}')
    all_day = {
        "summary": "Holiday",
        "isAllDay": True,
        "start": {"date": "2027-01-25"},
        "end": {"date": "2027-01-26"},
    }
    await spine.api.create("u-alice", all_day)
    await spine.api.create("u-alice", timed("Private: dentist", 24))
    review = await spine.api.create("u-alice", timed("Review", 24, hour=15))
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:p@client\r\nDTSTAMP:20250101T000000Z\r\nDTSTART;TZID=Asia/Shanghai:20270124T0800"
        "00\r\nDTEND;TZID=Asia/Shanghai:20270124T090000\r\nSUMMARY:private: gym\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert spine.calendar.put_raw("gym.ics", ics)[0] == 201
    with structlog.testing.capture_logs() as logs:
        assert await step(spine, poll=True) == {"dingtalk": 0, "caldav": 1}
    reasons = {e["reason"] for e in logs if e["event"] == "item_skipped"}
    assert reasons == {
        "filtered: all-day",
        "filtered: summary matches '(?i)^private:'",
    }
    assert sorted(await caldav_events(spine)) == ["Review", "private: gym"]
    assert dt_summaries(spine) == ["Holiday", "Private: dentist", "Review"]

    await patch_dingtalk(spine, "u-alice", review["id"], summary="PRIVATE: review")
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert sorted(await caldav_events(spine)) == ["private: gym"]
    await patch_dingtalk(spine, "u-alice", review["id"], summary="Review again")
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert sorted(await caldav_events(spine)) == ["Review again", "private: gym"]
    assert await step(spine, poll=True) == NONE


async def test_prefix_round_trips_both_ways(spine: Spine, tmp_path: Path) -> None:
    """transform.summary_prefix "[DT] ": copies carry it, edits come back without it, and
    no title ever holds it twice."""
    shaped(spine, tmp_path, transform='{summary_prefix: "[DT] "}')
    await spine.api.create("u-alice", timed("Title", 26))
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert list(await caldav_events(spine)) == ["[DT] Title"]

    await edit_caldav(spine, "[DT] Title", new="[DT] New")
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    assert dt_summaries(spine) == ["New"]

    await edit_caldav(spine, "[DT] New", new="Typed")
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    assert dt_summaries(spine) == ["Typed"]

    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:lunch@client\r\nDTSTAMP:20250101T000000Z\r\nDTSTART;TZID=Asia/Shanghai:20270127T"
        "120000\r\nDTEND;TZID=Asia/Shanghai:20270127T130000\r\nSUMMARY:Lunch\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert spine.calendar.put_raw("lunch.ics", ics)[0] == 201
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    assert dt_summaries(spine) == ["Typed", "[DT] Lunch"]
    lunch = next(e for e in spine.dingtalk_events() if e["summary"] == "[DT] Lunch")
    await patch_dingtalk(spine, "u-alice", lunch["id"], summary="[DT] Long lunch")
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    assert sorted(await caldav_events(spine)) == ["Long lunch", "Typed"]
    for _ in range(2):
        assert await step(spine, poll=True) == NONE
    everything = [*dt_summaries(spine), *await caldav_events(spine)]
    assert not any(s.startswith("[DT] [DT]") for s in everything)


async def test_busy_mirror_into_dingtalk(spine: Spine, tmp_path: Path) -> None:
    """mirror: busy, to_dingtalk: a CalDAV event becomes a DingTalk "Busy" block without
    details, free/busy kept (freeBusyStatus as stored); a title change writes nothing, a
    time change patches DingTalk once; polls after each write nothing."""
    shaped(spine, tmp_path, mirror="busy", direction="to_dingtalk")
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:doc@client\r\nDTSTAMP:20250101T000000Z\r\nDTSTART;TZID=Asia/Shanghai:20270128T"
        "090000\r\nDTEND;TZID=Asia/Shanghai:20270128T100000\r\nSUMMARY:Doctor\r\n"
        "DESCRIPTION:results\r\nLOCATION:Clinic\r\nTRANSP:TRANSPARENT\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert spine.calendar.put_raw("doc.ics", ics)[0] == 201
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    (event,) = spine.dingtalk_events()
    assert (event["summary"], event.get("description", "")) == ("Busy", "")
    assert "location" not in event or not event["location"].get("displayName")
    stored = spine.sandbox.sandbox.dump()["events"][event["id"]]["fields"]
    assert stored.get("freeBusyStatus") == "free"
    assert await step(spine, poll=True) == NONE

    await edit_caldav(spine, "Doctor", new="Dentist")
    assert await step(spine, poll=True) == NONE
    await edit_caldav(spine, "Dentist", hours=1)
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    (event,) = spine.dingtalk_events()
    assert event["start"]["dateTime"].startswith("2027-01-28T10:00")
    assert await step(spine, poll=True) == NONE
    assert list(await caldav_events(spine)) == ["Dentist"]


async def test_busy_copy_in_dingtalk_moves_its_caldav_source(spine: Spine, tmp_path: Path) -> None:
    """mirror: busy, both ways, an event born in CalDAV: its DingTalk copy is "Busy"; moving
    that copy in DingTalk moves the CalDAV event once and keeps its title and text."""
    shaped(spine, tmp_path, mirror="busy")
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:doc2@client\r\nDTSTAMP:20250101T000000Z\r\nDTSTART;TZID=Asia/Shanghai:20270129T"
        "090000\r\nDTEND;TZID=Asia/Shanghai:20270129T100000\r\nSUMMARY:Doctor\r\n"
        "DESCRIPTION:results\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert spine.calendar.put_raw("doc2.ics", ics)[0] == 201
    assert await step(spine, poll=True) == {"dingtalk": 1, "caldav": 0}
    (copy,) = spine.dingtalk_events()
    assert copy["summary"] == "Busy"
    assert await step(spine, poll=True) == NONE

    moved = {k: v for k, v in timed("Busy", 29, hour=11).items() if k in ("start", "end")}
    await patch_dingtalk(spine, "u-alice", copy["id"], **moved)
    assert await step(spine) == {"dingtalk": 0, "caldav": 1}
    (source,) = (await caldav_events(spine)).values()
    assert (str(source["SUMMARY"]), str(source["DESCRIPTION"])) == ("Doctor", "results")
    assert source["DTSTART"].dt.hour == 11
    assert await step(spine, poll=True) == NONE
