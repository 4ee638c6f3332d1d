"""patch_body and free/busy on the DingTalk side: only changed mapped keys are sent.

Also: ``freeBusyStatus`` is read when a response has it (``busy`` otherwise), always
written, and ``as_dingtalk_keeps`` predicts ``busy`` (DingTalk does not return it).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from structlog.testing import capture_logs

from syncd.model import Attendee, Event
from syncd.translate import (
    as_dingtalk_keeps,
    event_from_dingtalk,
    event_to_dingtalk,
    is_empty_patch,
    patch_body,
)
from tests.fixtures.dingtalk_shapes import CTX

TZ = ZoneInfo("Asia/Shanghai")
EXTRA = {"noPushNotification": "true", "noChatNotification": "true"}
BASE = Event(
    uid="p@x",
    summary="Planning",
    start=datetime(2027, 1, 4, 9, tzinfo=TZ),
    end=datetime(2027, 1, 4, 10, tzinfo=TZ),
    description="Agenda",
    location="Room 4",
    attendees=(Attendee("bob@acme.example", "Bob", "needs-action", False),),
    reminders=(15,),
)
HELD = {"id": "ev1", "freeBusyStatus": "busy"}  # a response that reports the field


def test_title_only_sends_title_and_extra() -> None:
    """A new title: the body is the title and the no-notification switches."""
    body = patch_body(BASE, dataclasses.replace(BASE, summary="New"), CTX, held=HELD)
    assert body == {"summary": "New", "extra": EXTRA}


def test_nothing_changed_is_an_empty_patch() -> None:
    """Equal events give a body that changes nothing."""
    body = patch_body(BASE, BASE, CTX, held=HELD)
    assert is_empty_patch(body)


def test_times_travel_together() -> None:
    """A new end sends start, end and isAllDay (DingTalk checks them as a unit)."""
    after = dataclasses.replace(BASE, end=BASE.end + timedelta(minutes=30))
    body = patch_body(BASE, after, CTX, held=HELD)
    assert set(body) == {"start", "end", "isAllDay", "extra"}
    assert body["end"]["dateTime"].startswith("2027-01-04T10:30:00")


def test_attendees_and_reminders_compare_as_sets() -> None:
    """Same attendees/reminders in another order: not sent; a new attendee: the full list."""
    carol = Attendee("carol@acme.example", "Carol")
    two = dataclasses.replace(BASE, attendees=(BASE.attendees[0], carol), reminders=(5, 15))
    swapped = dataclasses.replace(two, attendees=(carol, BASE.attendees[0]), reminders=(15, 5))
    assert is_empty_patch(patch_body(two, swapped, CTX, held=HELD))
    body = patch_body(BASE, two, CTX, held=HELD)
    assert sorted(a["id"] for a in body["attendees"]) == ["u-bob", "u-carol"]
    assert [r["minutes"] for r in body["reminders"]] == [5, 15]


def test_free_busy_is_sent_when_dingtalk_does_not_report_it() -> None:
    """Without the field in the raw event, freeBusyStatus is always sent (its value is
    unknown); when reported and equal, it is not."""
    free = dataclasses.replace(BASE, free_busy="free")
    assert patch_body(BASE, BASE, CTX, held={"id": "ev1"})["freeBusyStatus"] == "busy"
    assert patch_body(BASE, free, CTX)["freeBusyStatus"] == "free"
    reported = {"id": "ev1", "freeBusyStatus": "free"}
    assert "freeBusyStatus" not in patch_body(free, free, CTX, held=reported)


def test_new_description_replaces_a_rich_text_body_with_a_log_line() -> None:
    """A new description also sends it as HTML rich text when DingTalk had one, logged;
    an unchanged description leaves the rich text alone (not in the body)."""
    held = {**HELD, "richTextDescription": {"text": "<b>Agenda</b>"}}
    after = dataclasses.replace(BASE, description="New <agenda>\nline two")
    with capture_logs() as logs:
        body = patch_body(BASE, after, CTX, held=held)
    assert body["richTextDescription"] == {"text": "New &lt;agenda&gt;<br/>line two"}
    assert [e["event"] for e in logs] == ["dingtalk_rich_text_replaced"]
    assert "richTextDescription" not in patch_body(
        BASE, dataclasses.replace(BASE, summary="x"), CTX, held=held
    )


def test_meeting_tail_is_compared_as_written() -> None:
    """A foreign meeting URL lives in the description tail: changing it sends description."""
    with_url = dataclasses.replace(BASE, online_meeting_url="https://zoom.example/1")
    body = patch_body(BASE, with_url, CTX, held=HELD)
    assert body["description"] == "Agenda\n\nOnline meeting: https://zoom.example/1"
    assert set(body) == {"description", "extra"}


def test_free_busy_read_written_and_predicted() -> None:
    """freeBusyStatus: read when present, busy when absent; always written; predicted busy."""
    raw = {
        "id": "e1",
        "summary": "s",
        "start": {"dateTime": "2027-01-04T09:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": "2027-01-04T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
    }
    assert event_from_dingtalk(raw, [], CTX).free_busy == "busy"
    assert event_from_dingtalk({**raw, "freeBusyStatus": "free"}, [], CTX).free_busy == "free"
    free = dataclasses.replace(BASE, free_busy="free")
    assert event_to_dingtalk(free, CTX)["freeBusyStatus"] == "free"
    assert event_to_dingtalk(BASE, CTX)["freeBusyStatus"] == "busy"
    assert as_dingtalk_keeps(free, CTX).free_busy == "busy"
