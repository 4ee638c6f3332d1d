"""patch_ical: an update rewrites only the changed mapped properties, in the stored object.

One table test per property family, on a master and on an override: the changed
property is rewritten, every other line stays byte for byte (parameters included).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from syncd.model import Attendee, Event, Recurrence
from syncd.translate import (
    Context,
    Directory,
    _patchprops,
    event_from_ical,
    event_to_ical,
    patch_ical,
)

CTX = Context(
    Directory({"u-alice": "alice@acme.example", "u-bob": "bob@acme.example"}),
    "u-alice",
    "Asia/Shanghai",
)
TZ = ZoneInfo("Asia/Shanghai")

STORED = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Client//EN\r
BEGIN:VTIMEZONE\r
TZID:Asia/Shanghai\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0800\r
TZOFFSETTO:+0800\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:t-1@client\r
DTSTAMP:20260101T000000Z\r
SEQUENCE:5\r
DTSTART;TZID=Asia/Shanghai:20270104T090000\r
DURATION:PT1H\r
RRULE:FREQ=WEEKLY;COUNT=4\r
SUMMARY;LANGUAGE=de;X-S=1:Planung\r
DESCRIPTION;ALTREP="cid:d@x";LANGUAGE=de:Text\r
X-ALT-DESC;FMTTYPE=text/html:<b>Text</b>\r
LOCATION:Room 4\r
CATEGORIES:Work\r
TRANSP:TRANSPARENT\r
CLASS:PUBLIC\r
URL:https://www.example.org/page\r
CONFERENCE;VALUE=URI;FEATURE=AUDIO;LABEL=Dial:https://meet.example/abc\r
ORGANIZER;CN=Alice;X-O=1:mailto:alice@acme.example\r
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=2.0;X-A=1:mailto:bob@acme.example\r
ATTENDEE;CN=Eve;RSVP=TRUE:mailto:eve@outside.example\r
X-UNKNOWN;X-P=q:keep\r
BEGIN:VALARM\r
ACTION:EMAIL\r
SUMMARY:soon\r
DESCRIPTION:soon\r
ATTENDEE:mailto:alice@acme.example\r
TRIGGER:-PT30M\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:AUDIO\r
TRIGGER;RELATED=END:PT5M\r
END:VALARM\r
BEGIN:VLOCATION\r
UID:loc@client\r
NAME:Building 7\r
END:VLOCATION\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:t-1@client\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Asia/Shanghai:20270111T090000\r
DTSTART;TZID=Asia/Shanghai:20270111T140000\r
DTEND;TZID=Asia/Shanghai:20270111T150000\r
SUMMARY:Planung (moved)\r
CATEGORIES:Moved\r
X-OVERRIDE:1\r
ORGANIZER;CN=Alice;X-O=1:mailto:alice@acme.example\r
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=2.0;X-A=1:mailto:bob@acme.example\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:t-1@client\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Asia/Shanghai:20270118T090000\r
DTSTART;TZID=Asia/Shanghai:20270118T090000\r
DTEND;TZID=Asia/Shanghai:20270118T100000\r
SUMMARY;LANGUAGE=de;X-S=1:Planung\r
DESCRIPTION;ALTREP="cid:d@x";LANGUAGE=de:Text\r
LOCATION:Room 4\r
TRANSP:TRANSPARENT\r
URL:https://www.example.org/page\r
CONFERENCE;VALUE=URI;FEATURE=AUDIO;LABEL=Dial:https://meet.example/abc\r
ORGANIZER;CN=Alice;X-O=1:mailto:alice@acme.example\r
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=2.0;X-A=1:mailto:bob@acme.example\r
ATTENDEE;CN=Eve;RSVP=TRUE:mailto:eve@outside.example\r
CATEGORIES:Only here\r
BEGIN:VALARM\r
ACTION:EMAIL\r
SUMMARY:soon\r
DESCRIPTION:soon\r
ATTENDEE:mailto:alice@acme.example\r
TRIGGER:-PT30M\r
END:VALARM\r
END:VEVENT\r
BEGIN:VTODO\r
UID:todo@client\r
SUMMARY:sibling\r
END:VTODO\r
END:VCALENDAR\r
"""


def _lines(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def _current() -> Event:
    return event_from_ical(STORED, CTX)


def _patched(target: Event) -> str:
    out = patch_ical(STORED, target, CTX)
    assert event_from_ical(out, CTX).fingerprint() == target.fingerprint()
    return out


def _changed_lines(out: str) -> tuple[set[str], set[str]]:
    """(lines removed from STORED, lines added), ignoring DTSTAMP/LAST-MODIFIED."""
    before, after = _lines(STORED), _lines(out)
    skip = ("DTSTAMP", "LAST-MODIFIED")
    gone = {x for x in before if x not in after and not x.startswith(skip)}
    new = {x for x in after if x not in before and not x.startswith(skip)}
    return gone, new


def _override(event: Event, index: int = 0, **changes: object) -> Event:
    overrides = list(event.overrides)
    overrides[index] = dataclasses.replace(overrides[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(event, overrides=tuple(overrides))


def test_the_stored_series_reads_as_expected() -> None:
    """The fixture is what the tests assume: a series with one real (moved) override;
    the other override differs from the rule only in unmapped lines (it reads as nothing)."""
    event = _current()
    assert event.recurrence is not None
    assert [o.summary for o in event.overrides] == ["Planung (moved)"]
    assert event.free_busy == "free"
    assert event.reminders == (30,)
    assert event.online_meeting_url == "https://meet.example/abc"


def test_nothing_changed_returns_the_stored_text_unchanged() -> None:
    """Target equal to what the object reads as: byte-for-byte the same text."""
    assert patch_ical(STORED, _current(), CTX) == STORED


def test_master_summary_keeps_its_parameters_and_every_other_line() -> None:
    """A new master title: LANGUAGE and X- params kept; the redundant override (unmapped
    CATEGORIES only) gets the new title too, so it still reads as the rule's occurrence."""
    out = _patched(dataclasses.replace(_current(), summary="Neu"))
    gone, new = _changed_lines(out)
    assert gone == {"SUMMARY;LANGUAGE=de;X-S=1:Planung"}
    assert new == {"SUMMARY;LANGUAGE=de;X-S=1:Neu"}
    assert out.count("SUMMARY;LANGUAGE=de;X-S=1:Neu") == 2
    assert "SEQUENCE:5" in out


def test_override_summary_changes_only_that_override() -> None:
    """An override's new title rewrites its SUMMARY; its CATEGORIES and X- lines stay."""
    out = _patched(_override(_current(), summary="Moved again"))
    gone, new = _changed_lines(out)
    assert (gone, new) == ({"SUMMARY:Planung (moved)"}, {"SUMMARY:Moved again"})


def test_description_drops_altrep_and_html_twin_keeps_language() -> None:
    """A new description: ALTREP and X-ALT-DESC (the old text as HTML) go, LANGUAGE stays."""
    out = _patched(dataclasses.replace(_current(), description="Neuer Text"))
    assert "DESCRIPTION;LANGUAGE=de:Neuer Text" in _lines(out)
    assert "X-ALT-DESC" not in out
    assert 'DESCRIPTION;ALTREP="cid:d@x";LANGUAGE=de:Text' not in _lines(out)


def test_cleared_location_removes_the_line() -> None:
    """An empty location removes LOCATION (master and the redundant override alike)."""
    out = _patched(dataclasses.replace(_current(), location=""))
    gone, new = _changed_lines(out)
    assert gone == {"LOCATION:Room 4"}
    assert new == set()


def test_master_moved_to_another_zone_replaces_duration_and_adds_a_vtimezone() -> None:
    """New start in Europe/Berlin: DTSTART rewritten, DURATION becomes DTEND, a VTIMEZONE
    for Berlin is added, Shanghai's stays (RECURRENCE-IDs still use it)."""
    event = _current()
    berlin = ZoneInfo("Europe/Berlin")
    start = event.start.astimezone(berlin)  # type: ignore[union-attr]
    target = dataclasses.replace(event, start=start, end=start + timedelta(hours=1))
    out = patch_ical(STORED, target, CTX)
    assert "DTSTART;TZID=Europe/Berlin:20270104T020000" in _lines(out)
    assert "DURATION:PT1H" not in out
    assert "TZID:Europe/Berlin" in out
    assert "TZID:Asia/Shanghai" in out


def test_unreferenced_vtimezone_is_dropped_only_when_it_was_in_use() -> None:
    """A single event moved from Shanghai to UTC loses the Shanghai VTIMEZONE; a VTIMEZONE
    nothing referenced before stays."""
    text = STORED.split("BEGIN:VEVENT")[0] + (
        "BEGIN:VTIMEZONE\r\nTZID:Unused/Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:s@x\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Asia/Shanghai:20270104T090000\r\nDTEND;TZID=Asia/Shanghai:20270104T100000\r\n"
        "SUMMARY:s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    event = event_from_ical(text, CTX)
    utc = ZoneInfo("UTC")
    target = dataclasses.replace(
        event,
        start=event.start.astimezone(utc),  # type: ignore[union-attr]
        end=event.end.astimezone(utc),  # type: ignore[union-attr]
    )
    out = patch_ical(text, target, CTX)
    assert "TZID:Asia/Shanghai" not in out
    assert "TZID:Unused/Zone" in out
    assert "DTSTART:20270104T010000Z" in _lines(out)


@pytest.mark.parametrize(
    ("field", "value", "line", "old"),
    [
        ("status", "tentative", "STATUS:TENTATIVE", set()),
        ("privacy", "private", "CLASS:PRIVATE", {"CLASS:PUBLIC"}),
        ("free_busy", "busy", "TRANSP:OPAQUE", {"TRANSP:TRANSPARENT"}),
    ],
)
def test_enumerated_fields_on_the_master(field: str, value: str, line: str, old: set[str]) -> None:
    """STATUS, CLASS and TRANSP: one line with the new value, nothing else changed."""
    out = _patched(dataclasses.replace(_current(), **{field: value}))  # type: ignore[arg-type]
    assert _changed_lines(out) == (old, {line})


@pytest.mark.parametrize(
    ("field", "value", "line"),
    [("status", "tentative", "STATUS:TENTATIVE"), ("free_busy", "free", "TRANSP:TRANSPARENT")],
)
def test_enumerated_fields_on_an_override(field: str, value: str, line: str) -> None:
    """On the moved override (no STATUS/TRANSP of its own) the line is added there only."""
    out = _patched(_override(_current(), **{field: value}))
    assert _changed_lines(out) == (set(), {line} - set(_lines(STORED)))
    moved = out.split("RECURRENCE-ID;TZID=Asia/Shanghai:20270111T090000")[1].split("END:VEVENT")[0]
    assert line in _lines(moved)


def test_unchanged_attendee_keeps_its_line_and_a_changed_one_keeps_unmapped_params() -> None:
    """Bob declines: PARTSTAT changes, SCHEDULE-STATUS and X- params stay, SCHEDULE-AGENT
    =CLIENT is added; Eve's line is untouched."""
    event = _current()
    bob = dataclasses.replace(event.attendees[0], partstat="declined")
    out = _patched(dataclasses.replace(event, attendees=(bob, event.attendees[1])))
    gone, new = _changed_lines(out)
    assert new == {
        "ATTENDEE;CN=Bob;PARTSTAT=DECLINED;SCHEDULE-STATUS=2.0;X-A=1;SCHEDULE-AGENT=CLIENT:"
        "mailto:bob@acme.example"
    }
    assert "ATTENDEE;CN=Eve;RSVP=TRUE:mailto:eve@outside.example" in _lines(out)
    # the moved override keeps its own (unchanged) Bob line
    assert gone == set()


def test_attendee_added_and_removed_on_an_override() -> None:
    """On the override, Eve leaves and Carol joins; Bob's line stays exactly."""
    carol = Attendee("carol@acme.example", "Carol", "needs-action", True)
    event = _current()
    target = _override(event, attendees=(event.overrides[0].attendees[0], carol))
    gone, new = _changed_lines(_patched(target))
    assert new == {
        "ATTENDEE;CN=Carol;PARTSTAT=NEEDS-ACTION;ROLE=OPT-PARTICIPANT;SCHEDULE-AGENT=CLIENT:"
        "mailto:carol@acme.example"
    }
    assert gone == set()  # the moved override had no Eve line of its own to lose


def test_organizer_change_keeps_x_params_and_drops_the_old_cn() -> None:
    """A new organizer: the address changes, CN (the old person's) goes, X- params stay."""
    out = _patched(dataclasses.replace(_current(), organizer="carol@acme.example"))
    assert "ORGANIZER;X-O=1;SCHEDULE-AGENT=CLIENT:mailto:carol@acme.example" in _lines(out)


def test_alarms_matched_by_minutes() -> None:
    """Reminders 30 → 10: the EMAIL alarm at 30 goes, a DISPLAY alarm at 10 comes, the
    alarm after the end (unmapped) stays."""
    out = _patched(dataclasses.replace(_current(), reminders=(10,)))
    assert "TRIGGER;RELATED=END:PT5M" in out
    assert "TRIGGER:-PT10M" in out
    master = out.split("RECURRENCE-ID")[0]
    assert "ACTION:EMAIL" not in master


def test_unchanged_reminders_keep_an_email_alarm() -> None:
    """A title edit leaves every VALARM (any ACTION) as it was."""
    out = _patched(dataclasses.replace(_current(), summary="x"))
    assert out.count("ACTION:EMAIL") == 2


def test_meeting_url_replaces_conference_value_keeping_its_params() -> None:
    """A new meeting URL: CONFERENCE's value changes (LABEL kept); URL, another page, stays."""
    out = _patched(dataclasses.replace(_current(), online_meeting_url="https://meet.example/new"))
    assert "CONFERENCE;VALUE=URI;FEATURE=AUDIO;LABEL=Dial:https://meet.example/new" in _lines(out)
    assert "URL:https://www.example.org/page" in _lines(out)


def test_cancelled_override_becomes_an_exdate() -> None:
    """The target cancels the moved occurrence: its VEVENT goes, an EXDATE comes."""
    event = _current()
    assert event.recurrence is not None
    rid = event.overrides[0].recurrence_id
    assert rid is not None
    target = dataclasses.replace(
        event, overrides=(), recurrence=Recurrence(event.recurrence.rrule, (rid,))
    )
    out = _patched(target)
    assert "X-OVERRIDE" not in out
    assert "EXDATE;TZID=Asia/Shanghai:20270111T090000" in _lines(out)


def test_new_override_is_added_after_the_others() -> None:
    """A new moved occurrence gets its own VEVENT; the existing ones stay as they are."""
    event = _current()
    rid = datetime(2027, 1, 25, 9, tzinfo=TZ)
    extra = dataclasses.replace(
        event.overrides[0],
        recurrence_id=rid,
        start=rid + timedelta(hours=2),
        end=rid + timedelta(hours=3),
        summary="Late",
    )
    out = _patched(dataclasses.replace(event, overrides=(*event.overrides, extra)))
    assert "RECURRENCE-ID;TZID=Asia/Shanghai:20270125T090000" in _lines(out)
    assert "X-OVERRIDE:1" in out
    assert "CATEGORIES:Only here" in out
    assert out.index("END:VTODO") > out.index("20270125T090000")


def test_rule_change_rewrites_rrule_only() -> None:
    """COUNT 4 → 6: RRULE is rewritten; overrides, VLOCATION, X- lines stay."""
    event = _current()
    assert event.recurrence is not None
    target = dataclasses.replace(event, recurrence=Recurrence("FREQ=WEEKLY;COUNT=6;BYDAY=MO"))
    gone, new = _changed_lines(_patched(target))
    assert gone == {"RRULE:FREQ=WEEKLY;COUNT=4"}
    assert new == {"RRULE:FREQ=WEEKLY;COUNT=6;BYDAY=MO"}


def test_series_becoming_a_single_event_drops_rule_and_overrides() -> None:
    """No recurrence in the target: RRULE and override VEVENTs go, the VTODO stays."""
    target = dataclasses.replace(_current(), recurrence=None, overrides=())
    out = _patched(target)
    assert "RRULE" not in out
    assert "RECURRENCE-ID" not in out
    assert "BEGIN:VLOCATION" in out
    assert "BEGIN:VTODO" in out


def test_stamps_follow_updated_and_sequence_never_moves() -> None:
    """A changed component gets DTSTAMP/LAST-MODIFIED from ``updated``; SEQUENCE stays 5."""
    when = datetime(2027, 2, 1, 8, 30, tzinfo=ZoneInfo("UTC"))
    out = _patched(dataclasses.replace(_current(), summary="x", updated=when))
    assert "LAST-MODIFIED:20270201T083000Z" in _lines(out)
    assert "SEQUENCE:5" in _lines(out)


def test_unreadable_stored_text_falls_back_to_a_full_rendering_with_a_log_line() -> None:
    """A stored object that does not parse: the full rendering, and ``ical_patch_fallback``."""
    target = _current()
    with capture_logs() as logs:
        out = patch_ical("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", target, CTX)
    assert out == event_to_ical(target, CTX) or "UID:t-1@client" in out
    assert event_from_ical(out, CTX).fingerprint() == target.fingerprint()
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["ical_patch_fallback"]


def test_a_patch_that_would_not_read_as_the_target_falls_back_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read-back check catches a patcher bug (injected: text properties left as they
    were): the full rendering is written instead and the mismatch is logged as an error."""
    monkeypatch.setattr(_patchprops, "set_text", lambda block, field, value: None)
    target = dataclasses.replace(_current(), summary="Neu")
    with capture_logs() as logs:
        out = patch_ical(STORED, target, CTX)
    assert event_from_ical(out, CTX).fingerprint() == target.fingerprint()
    assert "X-UNKNOWN" not in out  # the full rendering: what the guard trades for correctness
    errors = [e for e in logs if e["event"] == "ical_patch_fallback"]
    assert [(e["log_level"], e["reason"], e["fields"]) for e in errors] == [
        ("error", "mismatch", ["summary"])
    ]
