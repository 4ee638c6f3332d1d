"""Value types RFC 5545 requires to agree: DTSTART/DTEND, all-day DURATION, UNTIL.

Input that breaks them has no single reading; it is reported with the properties named,
never guessed. An UNTIL of the wrong type is kept when every reader agrees on the series.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from syncd.errors import BrokenCalendarData
from syncd.translate import Context, event_from_ical, event_to_ical
from tests.fixtures.dingtalk_shapes import CTX

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ics(*lines: str) -> str:
    body = "\n".join(["UID:v", "DTSTAMP:20250101T000000Z", "SUMMARY:s", *lines])
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (
            "DTSTART:20000101T000000",
            "DTEND:20000103T020000Z",
            "floating DATE-TIME but DTEND is a zoned",
        ),
        (
            "DTSTART:20000101T000000Z",
            "DTEND:20000102T040000",
            "zoned DATE-TIME but DTEND is a floating",
        ),
        ("DTSTART:20000101T100000", "DTEND;TZID=Europe/Berlin:20000101T120000", "floating"),
        ("DTSTART;VALUE=DATE:20000101", "DTEND:20000102T040000", "a DATE but DTEND is a floating"),
        ("DTSTART;VALUE=DATE:20000101", "DTEND:20000103T020000Z", "a DATE but DTEND is a zoned"),
        (
            "DTSTART:20000101T000000",
            "DTEND;VALUE=DATE:20000102",
            "floating DATE-TIME but DTEND is a DATE",
        ),
        (
            "DTSTART:20000101T000000Z",
            "DTEND;VALUE=DATE:20000102",
            "zoned DATE-TIME but DTEND is a DATE",
        ),
        ("DTSTART;VALUE=DATE:20000101", "DURATION:PT10H", "DURATION PT10H is not whole days"),
        ("DTSTART;VALUE=DATE:20000101", "DURATION:P1DT1H", "DURATION P1DT1H is not whole days"),
    ],
)
def test_mixed_value_types_are_reported(start: str, end: str, reason: str) -> None:
    """Each invalid mix raises BrokenCalendarData naming DTSTART and DTEND or DURATION."""
    with pytest.raises(BrokenCalendarData, match=reason) as info:
        event_from_ical(ics(start, end), CTX)
    assert "DTSTART" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (
            "DTSTART;TZID=Asia/Shanghai:20250101T100000",
            "DTEND:20250101T030000Z",
            (datetime(2025, 1, 1, 10, tzinfo=SHANGHAI), datetime(2025, 1, 1, 11, tzinfo=SHANGHAI)),
        ),
        (
            "DTSTART:20250101T100000",
            "DTEND:20250101T110000",
            (datetime(2025, 1, 1, 10, tzinfo=SHANGHAI), datetime(2025, 1, 1, 11, tzinfo=SHANGHAI)),
        ),
        ("DTSTART;VALUE=DATE:20250101", "DURATION:P3D", (date(2025, 1, 1), date(2025, 1, 4))),
        ("DTSTART;VALUE=DATE:20250101", "DURATION:P1W", (date(2025, 1, 1), date(2025, 1, 8))),
        (
            "DTSTART:20250101T020000Z",
            "DURATION:PT10H",
            (
                datetime(2025, 1, 1, 2, tzinfo=ZoneInfo("UTC")),
                datetime(2025, 1, 1, 12, tzinfo=ZoneInfo("UTC")),
            ),
        ),
    ],
)
def test_agreeing_value_types_are_read(start: str, end: str, expected: tuple[Any, Any]) -> None:
    """A zoned start with a UTC end, floating with floating, whole-day durations: read."""
    event = event_from_ical(ics(start, end), CTX)
    assert (event.start, event.end) == expected


MONTHLY = "DTSTART;TZID=Asia/Shanghai:20250115T100000", "DTEND;TZID=Asia/Shanghai:20250115T110000"


def test_date_until_with_an_occurrence_on_that_day_is_reported() -> None:
    """UNTIL=20250615 on a 10:00 monthly series: recurring-ical-events and dateutil end it
    on 15 May, vobject (Radicale) on 15 June: no single reading, so it is reported."""
    with pytest.raises(BrokenCalendarData, match="readers disagree whether 2025-06-15 10:00") as e:
        event_from_ical(ics(*MONTHLY, "RRULE:FREQ=MONTHLY;UNTIL=20250615"), CTX)
    assert "UNTIL=20250615 is a DATE" in str(e.value)


def test_date_until_on_a_day_without_occurrence_is_kept_as_every_reader_reads_it() -> None:
    """UNTIL=20250620 ends the series after 15 June whichever way it is read."""
    event = event_from_ical(ics(*MONTHLY, "RRULE:FREQ=MONTHLY;UNTIL=20250620"), CTX)
    assert event.recurrence is not None
    assert event.recurrence.rrule == "FREQ=MONTHLY;UNTIL=20250619T160000Z;BYMONTHDAY=15"


def test_local_until_on_a_zoned_series_is_reported_when_readings_differ() -> None:
    """UNTIL=20250615T100000 (no Z): 02:00 UTC in the start's zone, or 10:00 UTC; the
    occurrence at 10:00 Shanghai (02:00 UTC) is in both; at 11:00 it is in only one."""
    kept = event_from_ical(ics(*MONTHLY, "RRULE:FREQ=MONTHLY;UNTIL=20250615T100000"), CTX)
    assert kept.recurrence is not None
    assert "UNTIL=20250615T020000Z" in kept.recurrence.rrule
    late = (
        "DTSTART;TZID=Asia/Shanghai:20250115T110000",
        "DTEND;TZID=Asia/Shanghai:20250115T120000",
    )
    with pytest.raises(BrokenCalendarData, match="is a local time on a timed series"):
        event_from_ical(ics(*late, "RRULE:FREQ=MONTHLY;UNTIL=20250615T100000"), CTX)


def _oracle(text: str, first: datetime) -> set[datetime]:
    """Occurrence starts over three years by recurring-ical-events, as UTC instants."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = recurring_ical_events.of(Calendar.from_ical(text)).between(
            first - timedelta(days=1), first + timedelta(days=1100)
        )
    out = set()
    for item in found:
        value = item["DTSTART"].dt
        aware = value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
        out.add(aware.astimezone(ZoneInfo("UTC")))
    return out


@st.composite
def date_until_series(draw: st.DrawFn) -> str:
    """A timed series in some zone whose UNTIL is a DATE (or a local time)."""
    day = draw(st.dates(date(2024, 1, 1), date(2026, 12, 31)))
    hour = draw(st.integers(0, 23))
    zone = draw(st.sampled_from(["Asia/Shanghai", "America/New_York", "UTC", "Pacific/Auckland"]))
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    until = day + timedelta(days=draw(st.integers(0, 400)))
    until_text = until.strftime("%Y%m%d")
    if draw(st.booleans()):
        until_text += f"T{draw(st.integers(0, 23)):02d}0000"
    start = datetime.combine(day, time(hour))
    return ics(
        f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={zone}:{start + timedelta(hours=1):%Y%m%dT%H%M%S}",
        f"RRULE:FREQ={freq};UNTIL={until_text}",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(date_until_series())
def test_until_of_the_wrong_type_matches_the_oracle_or_is_reported(text: str) -> None:
    """Against recurring-ical-events: the same occurrences, or BrokenCalendarData saying
    that readers disagree (then the oracle's reading differs from vobject's or dateutil's)."""
    ctx = Context(timezone="Asia/Shanghai")
    try:
        event = event_from_ical(text, ctx)
    except BrokenCalendarData as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        assert "readers disagree" in reason or "before DTSTART" in reason
        return
    assert isinstance(event.start, datetime)
    first = event.start.replace(tzinfo=None)
    assert _oracle(event_to_ical(event, ctx), first) == _oracle(text, first)
