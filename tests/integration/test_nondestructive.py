"""End to end: a DingTalk edit never strips what a CalDAV client put into an event.

An event (and a series) carrying properties, parameters and components syncd does not map
is created in a CalDAV client, synced to DingTalk, retitled in DingTalk, synced back. The
CalDAV object afterwards must still hold every unmapped content line it held before
(``lost_unmapped`` counts them; the regression this guards against lost 26), and a free
(``TRANSP:TRANSPARENT``) event must be free in DingTalk and stay transparent in CalDAV.
Runs on every server the ``caldav_calendar`` fixture offers.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import icalendar
from icalendar.parser import Contentline

from syncd.adapters.caldav.client import RawItem
from tests.fixtures.spine import Spine

SINGLE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Client//Test//EN\r
BEGIN:VEVENT\r
UID:keep-single@client.example\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Asia/Shanghai:20270125T100000\r
DTEND;TZID=Asia/Shanghai:20270125T110000\r
SUMMARY:Planning\r
DESCRIPTION;LANGUAGE=en:Agenda in the attachment\r
LOCATION;LANGUAGE=en:Room 4\r
CATEGORIES:Work,Project X\r
TRANSP:TRANSPARENT\r
COLOR:turquoise\r
GEO:37.386013;-122.082932\r
X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r
X-CLIENT-NOTE;X-SOURCE=desk:keep me\r
ATTACH;FMTTYPE=application/pdf:https://files.example/agenda.pdf\r
ORGANIZER;CN=Alice Example;X-ORG-ID=42:mailto:alice@acme.example\r
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;SCHEDULE-STATUS=1.2;X-SEEN=yes:mailto:bob@acme.example\r
ATTENDEE;CN=Dave Outside;PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:dave@outside.example\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Reminder\r
TRIGGER:-PT15M\r
X-WR-ALARMUID:alarm-1\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:EMAIL\r
SUMMARY:Planning soon\r
DESCRIPTION:Planning starts in 30 minutes\r
ATTENDEE:mailto:alice@acme.example\r
TRIGGER:-PT30M\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:AUDIO\r
TRIGGER;RELATED=END:PT5M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""

SERIES = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Client//Test//EN\r
BEGIN:VEVENT\r
UID:keep-series@client.example\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Asia/Shanghai:20270104T090000\r
DTEND;TZID=Asia/Shanghai:20270104T093000\r
RRULE:FREQ=WEEKLY;COUNT=6;BYDAY=MO\r
SUMMARY:Weekly sync\r
X-MASTER-PROP;X-P=1:master value\r
ORGANIZER;CN=Alice Example:mailto:alice@acme.example\r
BEGIN:VLOCATION\r
UID:loc-1@client.example\r
NAME:Building 7\r
END:VLOCATION\r
BEGIN:X-CLIENT-EXTRA\r
X-THING:opaque\r
END:X-CLIENT-EXTRA\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:keep-series@client.example\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Asia/Shanghai:20270111T090000\r
DTSTART;TZID=Asia/Shanghai:20270111T140000\r
DTEND;TZID=Asia/Shanghai:20270111T143000\r
SUMMARY:Weekly sync (afternoon)\r
CATEGORIES:Moved\r
ORGANIZER;CN=Alice Example:mailto:alice@acme.example\r
END:VEVENT\r
END:VCALENDAR\r
"""

# Properties syncd maps, directly inside a VEVENT: these may be rewritten when they change.
_MAPPED = {
    "UID", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "DTSTART", "DTEND", "DURATION",
    "RECURRENCE-ID", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS", "CLASS", "RRULE",
    "EXDATE", "URL", "CONFERENCE",
}  # fmt: skip
_PERSON_MAPPED = {
    "ORGANIZER": {"SCHEDULE-AGENT"},
    "ATTENDEE": {"CN", "PARTSTAT", "ROLE", "SCHEDULE-AGENT"},
}


def _unfold(text: str) -> list[str]:
    return [line for line in re.sub(r"\r?\n[ \t]", "", text).splitlines() if line]


def unmapped(text: str) -> Counter[str]:
    """Every unmapped content line (by component path), and every parameter of a mapped
    property that does not encode its value (``LANGUAGE``, ``X-``, ``SCHEDULE-STATUS``...)."""
    found: Counter[str] = Counter()
    path: list[str] = []
    for line in _unfold(text):
        name, params, value = Contentline(line).parts()
        if name in {"BEGIN", "END"}:
            path = [*path, value.upper()] if name == "BEGIN" else path[:-1]
            continue
        where = "/".join(path)
        if where.endswith("VEVENT") and name in _PERSON_MAPPED:
            kept = {k: v for k, v in params.items() if k not in _PERSON_MAPPED[name]}
            found.update(f"{where} {name} {value.lower()} {k}={v}" for k, v in kept.items())
        elif where.endswith("VEVENT") and name in _MAPPED:
            extra = {k: v for k, v in params.items() if k not in {"TZID", "VALUE"}}
            found.update(f"{where} {name} {k}={v}" for k, v in extra.items())
        elif name != "PRODID":
            found[f"{where} {line}"] += 1
    return found


def lost_unmapped(before: str, after: str) -> list[str]:
    """Unmapped lines and parameters of ``before`` that ``after`` no longer has."""
    return sorted((unmapped(before) - unmapped(after)).elements())


async def _item(spine: Spine, uid: str) -> RawItem:
    items = [i for i in (await spine.caldav_items()).items if uid in i.text]
    assert len(items) == 1, [i.href for i in items]
    return items[0]


def _dingtalk_by_summary(spine: Spine, summary: str) -> dict[str, Any]:
    [event] = [e for e in spine.dingtalk_events() if e["summary"] == summary]
    return event


async def _retitle_in_dingtalk(spine: Spine, event_id: str, title: str) -> None:
    body = {"id": event_id, "summary": title}
    status, data = await spine.api.call(
        "PUT", spine.api.events("u-alice", f"/{event_id}"), json=body
    )
    assert status == 200, data


async def test_single_event_keeps_every_unmapped_property(spine: Spine) -> None:
    """A free event with 20+ unmapped lines and parameters survives a DingTalk retitle intact.

    It is free in DingTalk (the sandbox holds ``freeBusyStatus: free``), and after the
    title change the CalDAV object has the new title, is still TRANSPARENT and has lost
    nothing unmapped.
    """
    assert spine.calendar.put_raw("single.ics", SINGLE)[0] in (201, 204)
    await spine.settle(poll=True)
    baseline = (await _item(spine, "keep-single@client.example")).text
    event = _dingtalk_by_summary(spine, "Planning")
    stored = spine.sandbox.sandbox.dump()["events"][event["id"]]["fields"]
    assert stored.get("freeBusyStatus") == "free"

    await _retitle_in_dingtalk(spine, event["id"], "Planning (new title)")
    await spine.settle()
    after = (await _item(spine, "keep-single@client.example")).text
    cal = icalendar.Calendar.from_ical(after)
    [vevent] = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Planning (new title)"
    assert str(vevent["TRANSP"]) == "TRANSPARENT"
    assert lost_unmapped(baseline, after) == []
    assert len(unmapped(baseline)) >= 20  # the measure sees what it should


async def test_series_keeps_every_unmapped_property(spine: Spine) -> None:
    """A series' master X- property, an override's CATEGORIES, a VLOCATION and an X-
    component all survive a DingTalk retitle of the series."""
    assert spine.calendar.put_raw("series.ics", SERIES)[0] in (201, 204)
    await spine.settle(poll=True)
    baseline = (await _item(spine, "keep-series@client.example")).text
    master = _dingtalk_by_summary(spine, "Weekly sync")

    await _retitle_in_dingtalk(spine, master["id"], "Weekly sync (renamed)")
    await spine.settle()
    after = (await _item(spine, "keep-series@client.example")).text
    summaries = sorted(
        str(v["SUMMARY"]) for v in icalendar.Calendar.from_ical(after).walk("VEVENT")
    )
    assert summaries == ["Weekly sync (afternoon)", "Weekly sync (renamed)"]
    assert lost_unmapped(baseline, after) == []
    # The measure sees what it should (a server that refused a component on the client's
    # own PUT would not have it in the baseline: that is not a loss syncd causes).
    seen = {part for key in unmapped(baseline) for part in re.split(r"[ /;:]", key)}
    assert {"X-MASTER-PROP", "CATEGORIES"} <= seen


def _dav_methods(spine: Spine, since: int) -> Counter[str]:
    return Counter(m for m, _ in spine.calendar.settled_requests()[since:] if m in {"GET", "PUT"})


def _dingtalk_ops(spine: Spine, before: dict[str, int]) -> dict[str, int]:
    now = spine.sandbox.sandbox.stats()["requests"]
    ops = ("GetEvent", "PatchEvent", "CreateEvent")
    return {
        op: now.get(op, 0) - before.get(op, 0) for op in ops if now.get(op, 0) != before.get(op, 0)
    }


async def test_each_update_costs_one_read_and_one_write(spine: Spine) -> None:
    """A DingTalk retitle costs CalDAV one GET (the item was not in this run's read) and one
    PUT; a CalDAV retitle costs DingTalk one GetEvent and one PatchEvent."""
    assert spine.calendar.put_raw("single.ics", SINGLE)[0] in (201, 204)
    await spine.settle(poll=True)
    event = _dingtalk_by_summary(spine, "Planning")
    since = len(spine.calendar.settled_requests())
    await _retitle_in_dingtalk(spine, event["id"], "Planning 2")
    await spine.settle()
    assert _dav_methods(spine, since) == Counter({"GET": 1, "PUT": 1})

    before = dict(spine.sandbox.sandbox.stats()["requests"])
    text = (await _item(spine, "keep-single@client.example")).text
    assert spine.calendar.put_raw(
        "single.ics", text.replace("SUMMARY:Planning 2", "SUMMARY:Planning 3")
    )[0] in (201, 204)
    await spine.settle(poll=True)
    assert _dingtalk_ops(spine, before) == {"GetEvent": 1, "PatchEvent": 1}
    assert _dingtalk_by_summary(spine, "Planning 3")["id"] == event["id"]
