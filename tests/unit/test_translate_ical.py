"""iCalendar → Event: zones (IANA, Windows, vendor, custom, floating), all-day, exceptions."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import Attendee
from syncd.translate import Context, event_from_ical, event_to_ical
from tests.fixtures.dingtalk_shapes import CTX

DATA = Path(__file__).parent.parent / "data" / "ics"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def read(name: str, ctx: Context = CTX) -> str:
    return (DATA / name).read_text()


def test_windows_tzids_become_iana_and_end_moves_into_start_zone() -> None:
    """'China Standard Time' → Asia/Shanghai; the W. Europe end is the same instant in it."""
    event = event_from_ical(read("windows-tzid.ics"), CTX)
    assert event.start == datetime(2025, 3, 10, 9, tzinfo=SHANGHAI)
    assert event.timezone == "Asia/Shanghai"
    assert event.end == datetime(2025, 3, 10, 10, tzinfo=SHANGHAI)  # 03:00 CET = 10:00 CST
    assert event.end.tzinfo == SHANGHAI  # type: ignore[union-attr]


def test_custom_vtimezone_is_matched_by_rules_or_falls_back_to_utc() -> None:
    """A US-rules custom zone matches America/New_York; an odd +05:17 zone becomes UTC."""
    event = event_from_ical(read("custom-vtimezone.ics"), CTX)
    assert event.start == datetime(2025, 7, 10, 10, tzinfo=NEW_YORK)
    assert event.timezone == "America/New_York"
    assert event.end == datetime(2025, 7, 10, 14, 43, tzinfo=ZoneInfo("UTC"))


def test_floating_start_with_a_zoned_end_is_reported() -> None:
    """Lightning's floating DTSTART with a zoned DTEND has no single reading (RFC 5545)."""
    with pytest.raises(BrokenCalendarData, match="DTSTART is a floating DATE-TIME but DTEND is"):
        event_from_ical(read("floating-mozilla.ics"), CTX)


def test_orphan_override_keeps_its_recurrence_id() -> None:
    """An override without its master is one event with recurrence_id."""
    event = event_from_ical(read("orphan-override.ics"), CTX)
    assert event.recurrence_id == datetime(2025, 4, 7, 2, tzinfo=ZoneInfo("UTC"))
    assert event.recurrence is None
    again = event_from_ical(event_to_ical(event, CTX), CTX)
    assert again.fingerprint() == event.fingerprint()
    assert again.recurrence_id == event.recurrence_id


def test_google_series_with_people_alarms_and_exceptions() -> None:
    """Organizer out of attendees, PARTSTAT/ROLE kept, cancelled override → EXDATE."""
    event = event_from_ical(read("google-series.ics"), CTX)
    assert event.organizer == "bob@acme.example"
    assert event.attendees == (
        Attendee("carol@acme.example", "Carol", "tentative", True),
        Attendee("guest@outside.example", "guest@outside.example", "needs-action", False),
    )
    assert event.reminders == (10, 1440)
    assert event.recurrence is not None
    assert event.recurrence.rrule == "FREQ=WEEKLY;UNTIL=20250505T035959Z;BYDAY=MO"
    assert event.recurrence.exdates == (
        datetime(2025, 3, 17, 10, tzinfo=NEW_YORK),
        datetime(2025, 3, 31, 10, tzinfo=NEW_YORK),
    )
    (moved,) = event.overrides
    assert moved.recurrence_id == datetime(2025, 3, 24, 10, tzinfo=NEW_YORK)
    assert moved.summary == "Weekly standup (moved)"


def test_written_calendar_has_vtimezone_and_schedule_agent_client() -> None:
    """What we write: PRODID, VTIMEZONE per zone, SEQUENCE 0, SCHEDULE-AGENT=CLIENT, VALARM."""
    event = event_from_ical(read("google-series.ics"), CTX)
    cal = Calendar.from_ical(event_to_ical(event, CTX))
    assert str(cal["PRODID"]) == "-//syncd//EN"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]
    master = cal.walk("VEVENT")[0]
    assert int(master["SEQUENCE"]) == 0
    assert master["ORGANIZER"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert {a.params["SCHEDULE-AGENT"] for a in master["ATTENDEE"]} == {"CLIENT"}
    assert sorted(str(a["TRIGGER"].to_ical(), "ascii") for a in master.walk("VALARM")) == [
        "-P1D",
        "-PT10M",
    ]


def test_re_read_ignores_server_rewrites() -> None:
    """DTSTAMP, SEQUENCE, PRODID, LAST-MODIFIED and line folding changes are not changes."""
    text = read("google-series.ics")
    rewritten = (
        text.replace("SEQUENCE:3", "SEQUENCE:9")
        .replace("DTSTAMP:20250301T010000Z", "DTSTAMP:20260101T000000Z")
        .replace("PRODID:-//Google Inc//Google Calendar 70.9054//EN", "PRODID:-//Radicale//EN")
        .replace(
            "SUMMARY:Weekly standup\n",
            "SUMMARY:Weekly st\n andup\nLAST-MODIFIED:20260101T000000Z\n",
        )
    )
    assert event_from_ical(rewritten, CTX).fingerprint() == event_from_ical(text, CTX).fingerprint()


def test_all_day_without_dtend_is_one_day() -> None:
    """DTSTART;VALUE=DATE without DTEND ends the next day (exclusive), never via UTC."""
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:d\nDTSTART;VALUE=DATE:20250301\n"
        "SUMMARY:day\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        event = event_from_ical(text, Context(timezone=zone))
        assert (event.start, event.end) == (date(2025, 3, 1), date(2025, 3, 2))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("this is not iCalendar", BrokenCalendarData),
        ("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", BrokenCalendarData),
        ("BEGIN:VCALENDAR\nBEGIN:VTODO\nUID:t\nEND:VTODO\nEND:VCALENDAR\n", Unrepresentable),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:r\nDTSTART:20250101T100000Z\n"
            "RDATE:20250105T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
            Unrepresentable,
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:n\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n",
            BrokenCalendarData,
        ),
    ],
)
def test_bad_input_raises_typed_errors(text: str, error: type[Exception]) -> None:
    """Unparseable text, no VEVENT, VTODO only, RDATE, no DTSTART: typed errors with reasons."""
    with pytest.raises(error) as info:
        event_from_ical(text, CTX)
    assert str(info.value)


def _series(start: str, rule: str) -> str:
    return (
        f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:u\nSUMMARY:s\nDTSTART{start}\nRRULE:{rule}\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        _series(";VALUE=DATE:20231002", "FREQ=WEEKLY;UNTIL=20231001;INTERVAL=2;BYDAY=MO"),
        _series(":20250301T100000Z", "FREQ=DAILY;UNTIL=20250301T095959Z"),
        _series(";TZID=Asia/Shanghai:20250301T100000", "FREQ=DAILY;UNTIL=20250301T015959Z"),
    ],
)
def test_series_ending_before_it_starts_is_broken(text: str) -> None:
    """UNTIL before DTSTART (no occurrence; Radicale refuses it) is broken data, with a reason."""
    with pytest.raises(BrokenCalendarData, match="UNTIL is before DTSTART"):
        event_from_ical(text, CTX)


def test_series_ending_on_its_start_is_kept() -> None:
    """UNTIL equal to DTSTART is one occurrence: a valid series, read as usual."""
    event = event_from_ical(_series(":20250301T100000Z", "FREQ=DAILY;UNTIL=20250301T100000Z"), CTX)
    assert event.recurrence is not None
    assert "UNTIL=20250301T100000Z" in event.recurrence.rrule
