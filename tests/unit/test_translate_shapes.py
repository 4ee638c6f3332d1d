"""The helpers of ``tests/fixtures/dingtalk_shapes.py`` answer the way DingTalk does."""

from __future__ import annotations

from datetime import date

from syncd.translate import event_from_dingtalk
from tests.fixtures.dingtalk_shapes import CTX, dingtalk_response, instance_response


def test_response_shape_has_string_minutes_and_organizer() -> None:
    """The helper answers like DingTalk: string minutes, organizer = creator, no extra."""
    body = {
        "summary": "s",
        "start": {"date": "2024-06-01"},
        "end": {"date": "2024-06-02"},
        "isAllDay": True,
        "reminders": [{"method": "dingtalk", "minutes": 15}],
        "extra": {"noPushNotification": "true"},
    }
    resp = dingtalk_response(body, CTX)
    assert resp["reminders"] == [{"method": "dingtalk", "minutes": "15"}]
    assert resp["organizer"]["id"] == "u-alice"
    assert "extra" not in resp
    event = event_from_dingtalk(resp, [], CTX)
    assert event.start == date(2024, 6, 1)
    assert event.reminders == (15,)
    assert event.organizer == "alice@acme.example"
    assert event.attendees == ()  # the organizer is not also an attendee


def test_instance_response_marks_series_and_origin() -> None:
    """A cancelled instance carries seriesMasterId, a UTC originStart and status cancelled."""
    master = {"id": "m1", "summary": "x"}
    inst = instance_response(master, date(2024, 6, 8), None, CTX)
    assert inst["seriesMasterId"] == "m1"
    assert inst["originStart"] == {"dateTime": "2024-06-08T00:00:00Z"}
    assert inst["status"] == "cancelled"
