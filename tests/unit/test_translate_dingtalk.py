"""DingTalk JSON ⇄ Event: response reading, request bodies, exceptions, limits, identity."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syncd.errors import BrokenCalendarData
from syncd.model import Attendee, Event
from syncd.translate import (
    DESCRIPTION_LIMIT,
    SUMMARY_LIMIT,
    dingtalk_warnings,
    event_from_dingtalk,
    event_to_dingtalk,
    exception_bodies,
    uid_for_dingtalk_id,
)
from syncd.translate._people import union_id_for
from tests.fixtures.dingtalk_shapes import CTX

DATA = Path(__file__).parent.parent / "data" / "dingtalk"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _series() -> Event:
    raw = json.loads((DATA / "weekly-series.json").read_text())
    return event_from_dingtalk(raw["master"], raw["instances"], CTX)


def test_reads_the_response_shape() -> None:
    """String minutes, organizer by directory, stand-in e-mail for strangers, meeting URL."""
    event = _series()
    assert event.uid == uid_for_dingtalk_id("cnNTbW1YbUxxxxvdlQrQT09")
    assert event.start == datetime(2025, 9, 20, 10, tzinfo=SHANGHAI)
    assert event.reminders == (5, 15)
    assert event.organizer == "alice@acme.example"
    bob, stranger = event.attendees
    assert bob == Attendee("bob@acme.example", "Bob", "declined", False)
    assert stranger.optional
    assert stranger.email.endswith("@unknown.dingtalk.invalid")
    assert union_id_for(stranger.email, CTX) == "u-stranger"
    assert event.online_meeting_url == "https://meeting.dingtalk.com/j/abc"
    assert event.location == "3F 会议室"
    assert event.updated == datetime(2025, 9, 2, 3, 4, 5, 678000, tzinfo=ZoneInfo("UTC"))


def test_instances_become_exdates_and_overrides() -> None:
    """Cancelled instance → EXDATE; moved one → override; an unchanged one is dropped."""
    event = _series()
    assert event.recurrence is not None
    assert event.recurrence.rrule == "FREQ=WEEKLY;COUNT=10;BYDAY=SA"
    assert event.recurrence.exdates == (datetime(2025, 9, 27, 10, tzinfo=SHANGHAI),)
    (moved,) = event.overrides
    assert moved.recurrence_id == datetime(2025, 10, 4, 10, tzinfo=SHANGHAI)
    assert moved.start == datetime(2025, 10, 4, 14, tzinfo=SHANGHAI)
    assert moved.summary == "周会 (moved)"


def test_body_shape_never_notifies_and_omits_the_organizer() -> None:
    """The body has int minutes, {id,isOptional} attendees without ctx.user, no-push extra."""
    body = event_to_dingtalk(_series(), CTX)
    assert "id" not in body
    assert body["extra"] == {"noPushNotification": "true", "noChatNotification": "true"}
    assert body["reminders"] == [
        {"method": "dingtalk", "minutes": 5},
        {"method": "dingtalk", "minutes": 15},
    ]
    assert {"id": "u-alice", "isOptional": False} not in body["attendees"]
    assert {"id": "u-bob", "isOptional": False} in body["attendees"]
    assert {"id": "u-stranger", "isOptional": True} in body["attendees"]
    assert body["start"] == {"dateTime": "2025-09-20T10:00:00+08:00", "timeZone": "Asia/Shanghai"}
    assert body["recurrence"] == {
        "pattern": {"type": "weekly", "daysOfWeek": "saturday", "interval": 1},
        "range": {"type": "numbered", "numberOfOccurrences": 10},
    }
    assert "Online meeting" not in body["description"]  # DingTalk's own meeting stays its own


def test_exception_bodies_list_cancellations_and_moves() -> None:
    """exception_bodies gives (recurrence_id, None) for EXDATEs and a body per override."""
    pairs = exception_bodies(_series(), CTX)
    assert [rid for rid, _ in pairs] == [
        datetime(2025, 9, 27, 10, tzinfo=SHANGHAI),
        datetime(2025, 10, 4, 10, tzinfo=SHANGHAI),
    ]
    assert pairs[0][1] is None
    moved = pairs[1][1]
    assert moved is not None
    assert "recurrence" not in moved
    assert moved["start"]["dateTime"] == "2025-10-04T14:00:00+08:00"


def test_end_in_another_zone_is_sent_in_the_start_zone() -> None:
    """DingTalk needs end.timeZone == start.timeZone: the end is converted, same instant."""
    event = Event(
        uid="u",
        summary="s",
        start=datetime(2025, 1, 1, 10, tzinfo=SHANGHAI),
        end=datetime(2025, 1, 1, 4, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    body = event_to_dingtalk(event, CTX)
    assert body["end"] == {"dateTime": "2025-01-01T11:00:00+08:00", "timeZone": "Asia/Shanghai"}


def test_all_day_body_uses_exclusive_dates() -> None:
    """An all-day event goes as {date} with an exclusive end and isAllDay true."""
    event = Event(uid="u", summary="day", start=date(2024, 6, 1), end=date(2024, 6, 2))
    body = event_to_dingtalk(event, CTX)
    assert (body["start"], body["end"], body["isAllDay"]) == (
        {"date": "2024-06-01"},
        {"date": "2024-06-02"},
        True,
    )


def test_limits_truncate_and_are_reported() -> None:
    """Over-long summary/description are cut to DingTalk's limits and named in the warnings."""
    event = Event(
        uid="u",
        summary="s" * 3000,
        description="d" * 6000,
        start=date(2024, 6, 1),
        end=date(2024, 6, 2),
        privacy="private",
        attendees=(Attendee("guest@outside.example"),),
    )
    body = event_to_dingtalk(event, CTX)
    assert len(body["summary"]) == SUMMARY_LIMIT
    assert len(body["description"]) == DESCRIPTION_LIMIT
    warnings = dingtalk_warnings(event, CTX)
    assert any(w.startswith("summary truncated") for w in warnings)
    assert any(w.startswith("description truncated") for w in warnings)
    assert any("guest@outside.example" in w for w in warnings)
    assert any("privacy" in w for w in warnings)


def test_foreign_meeting_url_travels_in_the_description() -> None:
    """A Zoom link has no DingTalk field: it is appended to the description and read back."""
    event = Event(
        uid="u",
        summary="s",
        description="Agenda",
        start=date(2024, 6, 1),
        end=date(2024, 6, 2),
        online_meeting_url="https://zoom.us/j/123",
    )
    body = event_to_dingtalk(event, CTX)
    assert body["description"] == "Agenda\n\nOnline meeting: https://zoom.us/j/123"
    back = event_from_dingtalk({"id": "x", **body}, [], CTX)
    assert (back.description, back.online_meeting_url) == ("Agenda", "https://zoom.us/j/123")


def test_uid_for_dingtalk_id_is_stable() -> None:
    """The UID is a pure function of the id (recoverable identity), distinct per id."""
    assert uid_for_dingtalk_id("abc") == uid_for_dingtalk_id("abc")
    assert uid_for_dingtalk_id("abc") != uid_for_dingtalk_id("abd")
    assert uid_for_dingtalk_id("abc") == "dingtalk-a9993e364706816aba3e25717850c26c@syncd"


def test_windows_zone_name_and_meeting_rooms_from_dingtalk() -> None:
    """A non-IANA timeZone is resolved; booked rooms' names join the location text."""
    resp = {
        "id": "r",
        "summary": "s",
        "start": {"dateTime": "2025-03-10T09:00:00+08:00", "timeZone": "China Standard Time"},
        "end": {"dateTime": "2025-03-10T10:00:00+08:00", "timeZone": "China Standard Time"},
        "location": {"displayName": "HQ", "meetingRooms": ["r1"]},
        "meetingRooms": [{"roomId": "r1", "displayName": "Room 7", "responseStatus": "accepted"}],
    }
    event = event_from_dingtalk(resp, [], CTX)
    assert event.timezone == "Asia/Shanghai"
    assert event.location == "HQ; Room 7"
    again = event_from_dingtalk({**resp, "location": {"displayName": event.location}}, [], CTX)
    assert again.location == "HQ; Room 7"  # written back, it does not grow


def test_broken_dingtalk_json_raises_typed_errors() -> None:
    """No id, no start, or a bad dateTime are BrokenCalendarData with a reason."""
    for bad in (
        {"summary": "no id"},
        {"id": "x", "summary": "no start"},
        {"id": "x", "start": {"dateTime": "yesterday"}, "end": {"date": "2025-01-01"}},
    ):
        with pytest.raises(BrokenCalendarData):
            event_from_dingtalk(bad, [], CTX)
