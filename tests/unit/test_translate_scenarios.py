"""Hard cases of real calendars at the translation level: recurrence edits, all-day and
zoned times, attendees, privacy, alarms (the numbers in the names only keep them in order)."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar

from syncd.model import Attendee, Event, Recurrence, When
from syncd.sync.shaping import busy_projection
from syncd.translate import (
    Context,
    as_dingtalk_keeps,
    canonical_rrule,
    dingtalk_warnings,
    editable_in_dingtalk,
    event_from_dingtalk,
    event_from_ical,
    event_to_dingtalk,
    event_to_ical,
    exception_bodies,
    user_response,
)
from tests.fixtures.dingtalk_shapes import CTX, dingtalk_response, instance_response

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def ics(*lines: str) -> str:
    body = "\n".join(lines)
    head = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nBEGIN:VEVENT"
    return f"{head}\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"


def via_dingtalk(event: Event, ctx: Context = CTX) -> Event:
    """Event → DingTalk body (+ exceptions) → response shape → Event."""
    master = dingtalk_response(event_to_dingtalk(event, ctx), ctx, event_id="evt-s")
    instances = [instance_response(master, r, b, ctx) for r, b in exception_bodies(event, ctx)]
    return event_from_dingtalk(master, instances, ctx)


def starts(event: Event, days: int = 365) -> list[datetime]:
    """Occurrence starts over ``days`` by recurring-ical-events (the oracle)."""
    first = (
        event.start
        if isinstance(event.start, datetime)
        else datetime.combine(event.start, datetime.min.time())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calendar.from_ical(event_to_ical(event, CTX))
        found = recurring_ical_events.of(cal).between(
            first.replace(tzinfo=None), (first + timedelta(days=days)).replace(tzinfo=None)
        )
    return sorted(o["DTSTART"].dt for o in found)


def series(rule: str, start: When, end: When, **kw: object) -> Event:
    rec = Recurrence(canonical_rrule(rule, start))
    return Event(
        uid="s",
        summary="Series",
        start=start,
        end=end,
        organizer="alice@acme.example",
        recurrence=rec,
        **kw,
    )  # type: ignore[arg-type]


def test_scenario_18_weekly_count_and_until() -> None:
    """Weekly series with COUNT or UNTIL: one series both ways, same dates over 12 months."""
    start = datetime(2025, 1, 6, 9, tzinfo=SH)
    for rule in ("FREQ=WEEKLY;COUNT=10;BYDAY=MO", "FREQ=WEEKLY;UNTIL=20250331T235959Z;BYDAY=MO,TH"):
        event = series(rule, start, start + timedelta(hours=1))
        back = via_dingtalk(event)
        assert back.fingerprint() == event.fingerprint()
        assert starts(back) == starts(event)
    assert len(starts(series("FREQ=WEEKLY;COUNT=10", start, start + timedelta(hours=1)))) == 10


def test_scenario_19_move_one_occurrence() -> None:
    """A RECURRENCE-ID override changes only that instance; the master body is untouched."""
    start = datetime(2025, 1, 6, 9, tzinfo=SH)
    plain = series("FREQ=WEEKLY;COUNT=5", start, start + timedelta(hours=1))
    rid = start + timedelta(weeks=2)
    moved = dataclasses.replace(
        plain,
        start=rid + timedelta(hours=3),
        end=rid + timedelta(hours=4),
        recurrence=None,
        recurrence_id=rid,
    )
    event = dataclasses.replace(plain, overrides=(moved,))
    assert event_to_dingtalk(event, CTX) == event_to_dingtalk(plain, CTX)
    (pair,) = exception_bodies(event, CTX)
    assert pair[0] == rid
    assert pair[1] is not None
    assert pair[1]["start"]["dateTime"] == "2025-01-20T12:00:00+08:00"
    assert via_dingtalk(event).fingerprint() == event.fingerprint()
    assert rid + timedelta(hours=3) in starts(event)
    assert rid not in starts(event)


def test_scenario_20_cancel_one_occurrence() -> None:
    """EXDATE ⇄ DingTalk cancelled instance: the occurrence disappears, the series stays."""
    start = datetime(2025, 1, 6, 9, tzinfo=SH)
    event = series("FREQ=DAILY;COUNT=5", start, start + timedelta(hours=1))
    cancelled = dataclasses.replace(
        event, recurrence=Recurrence(event.recurrence.rrule, (start + timedelta(days=2),))
    )  # type: ignore[union-attr]
    assert exception_bodies(cancelled, CTX) == [(start + timedelta(days=2), None)]
    back = via_dingtalk(cancelled)
    assert back.recurrence == cancelled.recurrence
    assert len(starts(back)) == 4


def test_scenario_21_this_and_following_split() -> None:
    """Truncating with UNTIL drops exceptions after it: no duplicated future instances."""
    start = datetime(2025, 1, 6, 9, tzinfo=SH)
    old = series("FREQ=DAILY;COUNT=10", start, start + timedelta(hours=1))
    late = start + timedelta(days=7)
    old = dataclasses.replace(old, recurrence=Recurrence(old.recurrence.rrule, (late,)))  # type: ignore[union-attr]
    text = event_to_ical(old, CTX).replace(
        "RRULE:FREQ=DAILY;COUNT=10", "RRULE:FREQ=DAILY;UNTIL=20250108T235959Z"
    )
    truncated = event_from_ical(text, CTX)
    assert truncated.recurrence is not None
    assert truncated.recurrence.exdates == ()  # the EXDATE after UNTIL is dropped
    assert event_to_dingtalk(truncated, CTX)["recurrence"]["range"] == {
        "type": "endDate",
        "endDate": "2025-01-08T23:59:59Z",
    }
    assert len(starts(truncated)) == 3


def test_scenario_22_delete_whole_series() -> None:
    """A cancelled DingTalk master reads as one cancelled event: the whole resource goes."""
    start = datetime(2025, 1, 6, 9, tzinfo=SH)
    event = series("FREQ=DAILY;COUNT=5", start, start + timedelta(hours=1))
    master = dingtalk_response(event_to_dingtalk(event, CTX), CTX, event_id="m")
    master["status"] = "cancelled"
    inst = instance_response(master, start + timedelta(days=1), None, CTX)
    gone = event_from_dingtalk(master, [inst], CTX)
    assert gone.status == "cancelled"
    assert gone.overrides == ()


def test_scenario_23_orphan_override() -> None:
    """An override without master (CalDAV or DingTalk instance) is stored and round-trips."""
    text = ics(
        "UID:o",
        "RECURRENCE-ID:20250407T020000Z",
        "DTSTART;TZID=Asia/Shanghai:20250407T140000",
        "DTEND;TZID=Asia/Shanghai:20250407T150000",
        "SUMMARY:moved",
    )
    event = event_from_ical(text, CTX)
    assert event_from_ical(event_to_ical(event, CTX), CTX) == event
    lone = {
        "id": "m_1",
        "seriesMasterId": "m",
        "originStart": {"dateTime": "2025-04-07T02:00:00Z"},
        "summary": "moved",
        "start": {"dateTime": "2025-04-07T14:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": "2025-04-07T15:00:00+08:00", "timeZone": "Asia/Shanghai"},
    }
    from_dt = event_from_dingtalk(lone, [], CTX)
    assert from_dt.recurrence_id == datetime(2025, 4, 7, 10, tzinfo=SH)


def test_scenario_24_recurring_all_day_birthday() -> None:
    """A yearly all-day event stays on the same date in every zone and year."""
    text = ics("UID:b", "DTSTART;VALUE=DATE:20000229", "RRULE:FREQ=YEARLY", "SUMMARY:Leap birthday")
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Shanghai", "UTC"):
        ctx = Context(directory=CTX.directory, user=CTX.user, timezone=zone)
        event = via_dingtalk(event_from_ical(text, ctx), ctx)
        assert (event.start, event.end) == (date(2000, 2, 29), date(2000, 3, 1))
        assert {(d.month, d.day) for d in starts(event, 366 * 8)} == {(2, 29)}


def test_scenario_25_shanghai_event_gets_tzid_and_vtimezone() -> None:
    """A DingTalk Asia/Shanghai event lands in CalDAV with TZID + VTIMEZONE, same instant."""
    resp = {
        "id": "x",
        "summary": "s",
        "start": {"dateTime": "2025-09-20T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": "2025-09-20T11:00:00+08:00", "timeZone": "Asia/Shanghai"},
    }
    text = event_to_ical(event_from_dingtalk(resp, [], CTX), CTX)
    assert "DTSTART;TZID=Asia/Shanghai:20250920T100000" in text
    assert "TZID:Asia/Shanghai" in text
    cal = Calendar.from_ical(text)
    assert cal.walk("VEVENT")[0]["DTSTART"].dt == datetime(2025, 9, 20, 2, tzinfo=ZoneInfo("UTC"))


def test_scenario_26_windows_names_and_unknown_custom_zone() -> None:
    """Windows names → IANA; an unmatched custom VTIMEZONE → the same instant in UTC."""
    text = ics("UID:w", "DTSTART;TZID=W. Europe Standard Time:20250310T090000", "DURATION:PT1H")
    assert event_from_ical(text, CTX).timezone == "Europe/Berlin"
    custom = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTIMEZONE\nTZID:Mars Time\nBEGIN:STANDARD\n"
        "DTSTART:16010101T000000\nTZOFFSETFROM:+0317\nTZOFFSETTO:+0317\nEND:STANDARD\nEND:VTIMEZONE\n"
        "BEGIN:VEVENT\nUID:m\nDTSTART;TZID=Mars Time:20250310T090000\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    event = event_from_ical(custom, CTX)
    assert event.start == datetime(2025, 3, 10, 5, 43, tzinfo=ZoneInfo("UTC"))


def test_scenario_27_new_york_weekly_across_dst() -> None:
    """10:00 America/New_York weekly stays 10:00 local across both DST changes, both ways."""
    start = datetime(2025, 1, 6, 10, tzinfo=NY)
    event = via_dingtalk(series("FREQ=WEEKLY;BYDAY=MO", start, start + timedelta(hours=1)))
    local = starts(event)
    assert len(local) == 53  # both ends of the year are Mondays
    assert {(s.hour, s.minute) for s in local} == {(10, 0)}
    assert {s.utcoffset() for s in local} == {timedelta(hours=-5), timedelta(hours=-4)}


def test_scenario_28_single_all_day() -> None:
    """DATE 2025-03-01 with exclusive end 03-02 is one day on both sides, never timed."""
    event = event_from_ical(
        ics("UID:a", "DTSTART;VALUE=DATE:20250301", "DTEND;VALUE=DATE:20250302"), CTX
    )
    body = event_to_dingtalk(event, CTX)
    assert (body["start"], body["end"], body["isAllDay"]) == (
        {"date": "2025-03-01"},
        {"date": "2025-03-02"},
        True,
    )
    assert "DTSTART;VALUE=DATE:20250301" in event_to_ical(via_dingtalk(event), CTX)


def test_scenario_29_multi_day_all_day_in_extreme_zones() -> None:
    """A three-day all-day event keeps its dates for tenants in UTC+14 and UTC−10."""
    text = ics("UID:m", "DTSTART;VALUE=DATE:20250301", "DTEND;VALUE=DATE:20250304")
    for zone in ("Pacific/Kiritimati", "Pacific/Honolulu"):
        ctx = Context(directory=CTX.directory, user=CTX.user, timezone=zone)
        event = via_dingtalk(event_from_ical(text, ctx), ctx)
        assert (event.start, event.end) == (date(2025, 3, 1), date(2025, 3, 4))


def test_scenario_30_floating_time_in_tenant_zone() -> None:
    """A floating DTSTART from an ICS feed is read in the tenant's zone (documented)."""
    text = ics("UID:f", "DTSTART:20250320T100000", "DTEND:20250320T110000")
    event = event_from_ical(text, Context(timezone="Europe/Berlin"))
    assert event.start == datetime(2025, 3, 20, 10, tzinfo=ZoneInfo("Europe/Berlin"))


def test_scenario_31_twenty_attendees_no_invitations() -> None:
    """20 attendees: every ATTENDEE/ORGANIZER has SCHEDULE-AGENT=CLIENT; DingTalk no-push."""
    people = tuple(Attendee(f"p{i:02d}@outside.example", f"P{i}") for i in range(20))
    event = Event(
        uid="i",
        summary="all hands",
        start=date(2025, 3, 1),
        end=date(2025, 3, 2),
        organizer="bob@acme.example",
        attendees=people,
    )
    ev = Calendar.from_ical(event_to_ical(event, CTX)).walk("VEVENT")[0]
    assert len(ev["ATTENDEE"]) == 20
    assert {a.params["SCHEDULE-AGENT"] for a in ev["ATTENDEE"]} == {"CLIENT"}
    assert ev["ORGANIZER"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert event_from_ical(event_to_ical(event, CTX), CTX).organizer == "bob@acme.example"
    assert event_to_dingtalk(event, CTX)["extra"] == {
        "noPushNotification": "true",
        "noChatNotification": "true",
    }


def test_scenario_32_partstat_only_change() -> None:
    """A PARTSTAT-only change is a change (fingerprint) but not a DingTalk body change."""
    bob = Attendee("bob@acme.example", "Bob")
    event = Event(
        uid="p",
        summary="s",
        start=date(2025, 3, 1),
        end=date(2025, 3, 2),
        organizer="alice@acme.example",
        attendees=(bob,),
    )
    answered = dataclasses.replace(
        event, attendees=(dataclasses.replace(bob, partstat="accepted"),)
    )
    assert answered.fingerprint() != event.fingerprint()
    assert event_to_dingtalk(answered, CTX) == event_to_dingtalk(event, CTX)
    invited = dataclasses.replace(
        event,
        organizer="bob@acme.example",
        attendees=(Attendee("alice@acme.example", "Alice", "tentative"),),
    )
    assert user_response(invited, CTX) == "tentative"  # goes through DingTalk's respond operation
    assert not editable_in_dingtalk(invited, CTX)


def test_scenario_33_private_event_busy_only() -> None:
    """CLASS:PRIVATE round-trips in CalDAV, is reported lossy for DingTalk; a busy mirror
    (``mirror: busy``) shows only its time."""
    event = Event(
        uid="b",
        summary="Doctor",
        description="x",
        location="Clinic",
        start=date(2025, 3, 1),
        end=date(2025, 3, 2),
        privacy="private",
    )
    assert event_from_ical(event_to_ical(event, CTX), CTX).privacy == "private"
    assert any("privacy" in w for w in dingtalk_warnings(event, CTX))
    blank = busy_projection(event)
    assert (blank.summary, blank.description, blank.location, blank.attendees) == (
        "Busy",
        "",
        "",
        (),
    )
    assert (blank.start, blank.end) == (event.start, event.end)


def test_scenario_34_declined_invitation_is_visible() -> None:
    """The bound user's decline in DingTalk reads as partstat declined (the mirror can go)."""
    resp = {
        "id": "d",
        "summary": "s",
        "start": {"date": "2025-03-01"},
        "end": {"date": "2025-03-02"},
        "isAllDay": True,
        "organizer": {"id": "u-bob"},
        "attendees": [{"id": "u-alice", "responseStatus": "declined", "self": True}],
    }
    event = event_from_dingtalk(resp, [], CTX)
    assert user_response(event, CTX) == "declined"
    assert event.attendees[0].partstat == "declined"


def test_scenario_35_alarms_do_not_multiply() -> None:
    """VALARM ⇄ reminders: three full cycles keep exactly the same alarms."""
    text = ics(
        "UID:r",
        "DTSTART;TZID=Asia/Shanghai:20250301T090000",
        "DURATION:PT1H",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:x",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "BEGIN:VALARM",
        "ACTION:AUDIO",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:x",
        "TRIGGER;RELATED=END:-PT2H",
        "END:VALARM",
    )
    event = event_from_ical(text, CTX)
    assert event.reminders == (15, 60)
    for _ in range(3):
        text = event_to_ical(via_dingtalk(event_from_ical(text, CTX)), CTX)
    assert text.count("BEGIN:VALARM") == 2
    assert as_dingtalk_keeps(event, CTX).reminders == (15, 60)
