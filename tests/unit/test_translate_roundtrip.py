"""Round trips are fingerprint-stable: Event → iCalendar → Event and Event → DingTalk → Event."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.model import Attendee, Event, Recurrence, When
from syncd.translate import (
    as_dingtalk_keeps,
    canonical_rrule,
    dingtalk_warnings,
    event_from_dingtalk,
    event_from_ical,
    event_to_dingtalk,
    event_to_ical,
    exception_bodies,
)
from syncd.translate._common import clean_name
from syncd.translate._people import clean_people
from tests.fixtures.dingtalk_shapes import CTX, NAMES, dingtalk_response, instance_response

ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]
DIRECTORY_PEOPLE = ["bob@acme.example", "carol@acme.example", "dave@acme.example"]
_NAME_OF = {"bob@acme.example": "Bob", "carol@acme.example": "Carol", "dave@acme.example": "Dave"}

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029")
    | st.sampled_from("\n\t;,\\:\"'"),
    max_size=40,
)

RULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3;COUNT=5",
    "FREQ=WEEKLY;COUNT=10",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
    "FREQ=MONTHLY;COUNT=6",
    "FREQ=MONTHLY;BYDAY=-1FR;COUNT=4",
    "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2",
    "FREQ=YEARLY;COUNT=3",
    "FREQ=WEEKLY;BYDAY=TU,TH",
]


@st.composite
def starts(draw: st.DrawFn) -> tuple[When, When]:
    day = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    if draw(st.booleans()):
        return day, day + timedelta(days=draw(st.integers(1, 5)))
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = datetime(
        day.year,
        day.month,
        day.day,
        draw(st.integers(0, 23)),
        15 * draw(st.integers(0, 3)),
        tzinfo=tz,
    )
    start = start.astimezone(tz)  # normalise a non-existent wall time
    return start, start + timedelta(minutes=draw(st.integers(0, 600)))


@st.composite
def events(draw: st.DrawFn, dingtalk: bool) -> Event:
    """Random events the model can hold; ``dingtalk`` limits them to what DingTalk keeps."""
    start, end = draw(starts())
    emails = (
        st.sampled_from(DIRECTORY_PEOPLE)
        if dingtalk
        else st.from_regex(r"[a-z0-9._-]{1,8}@[a-z]{1,6}\.example", fullmatch=True)
    )
    people = draw(st.lists(emails, max_size=4, unique=True))
    attendees = tuple(
        Attendee(
            email=e,
            name=_NAME_OF.get(e, "") if dingtalk else clean_name(draw(text)),
            partstat="needs-action"
            if dingtalk
            else draw(st.sampled_from(["needs-action", "accepted", "declined", "tentative"])),
            optional=draw(st.booleans()),
        )
        for e in people
    )
    organizer = "alice@acme.example" if dingtalk else draw(st.none() | emails)
    event = Event(
        uid="uid-1",
        summary=draw(text),
        start=start,
        end=end,
        description=draw(text),
        location=draw(text),
        status="confirmed"
        if dingtalk
        else draw(st.sampled_from(["confirmed", "tentative", "cancelled"])),
        privacy="public"
        if dingtalk
        else draw(st.sampled_from(["public", "private", "confidential"])),
        organizer=organizer,
        attendees=clean_people(organizer, attendees),  # the organizer is never an attendee
        reminders=tuple(sorted(draw(st.sets(st.integers(0, 20000), max_size=3)))),
        online_meeting_url=draw(
            st.none() | st.from_regex(r"https://zoom\.us/j/[0-9]{3,9}", fullmatch=True)
        ),
    )
    if draw(st.booleans()):
        event = _with_series(draw, event)
    return event


def _with_series(draw: st.DrawFn, event: Event) -> Event:
    rule = canonical_rrule(draw(st.sampled_from(RULES)), event.start)
    anchor = (
        event.start
        if isinstance(event.start, datetime)
        else datetime.combine(event.start, datetime.min.time())
    )
    occurrences = list(rrulestr(rule, dtstart=anchor).xafter(anchor, count=8, inc=True))

    def kind(moment: datetime) -> When:
        return moment if isinstance(event.start, datetime) else moment.date()

    picks = (
        draw(st.lists(st.sampled_from(occurrences[1:]), max_size=3, unique=True))
        if len(occurrences) > 1
        else []
    )
    exdates = tuple(sorted(kind(p) for p in picks[:1]))
    overrides = tuple(
        dataclasses.replace(
            event,
            summary=event.summary + " (moved)",
            status="confirmed",
            start=kind(p) + timedelta(days=1),
            end=kind(p) + timedelta(days=1) + (event.end - event.start),
            recurrence_id=kind(p),
        )
        for p in sorted(picks[1:])
    )
    return dataclasses.replace(event, recurrence=Recurrence(rule, exdates), overrides=overrides)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(dingtalk=False))
def test_ical_round_trip_is_identity(event: Event) -> None:
    """event_from_ical(event_to_ical(e)) == e for any event the model can hold."""
    back = event_from_ical(event_to_ical(event, CTX), CTX)
    assert back == event
    assert back.fingerprint() == event.fingerprint()


def _through_dingtalk(event: Event) -> Event:
    master = dingtalk_response(event_to_dingtalk(event, CTX), CTX, event_id="evt-1")
    instances = [
        instance_response(master, rid, body, CTX, NAMES)
        for rid, body in exception_bodies(event, CTX)
    ]
    return event_from_dingtalk(master, instances, CTX)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(dingtalk=True))
def test_dingtalk_round_trip_keeps_fingerprint(event: Event) -> None:
    """A body stored by DingTalk reads back as predicted; unchanged when nothing is lossy."""
    back = _through_dingtalk(event)
    assert back.fingerprint() == as_dingtalk_keeps(event, CTX).fingerprint(), (back, event)
    if not dingtalk_warnings(event, CTX):
        assert back.fingerprint() == event.fingerprint()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(dingtalk=False))
def test_as_dingtalk_keeps_predicts_the_read_back(event: Event) -> None:
    """For any event, the read-back equals as_dingtalk_keeps (names aside: DingTalk's own)."""
    back = _through_dingtalk(event)
    expected = as_dingtalk_keeps(event, CTX)

    def plain(e: Event) -> Event:
        people = tuple(
            dataclasses.replace(a, name="", partstat="needs-action") for a in e.attendees
        )
        return dataclasses.replace(
            e, attendees=people, overrides=tuple(plain(o) for o in e.overrides)
        )

    assert plain(back).fingerprint() == plain(expected).fingerprint(), (back, expected)


@st.composite
def dingtalk_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Random DingTalk GetEvent answers (+ exception instances) in the response shape."""
    event = draw(events(dingtalk=True))
    master = dingtalk_response(event_to_dingtalk(event, CTX), CTX, event_id="evt-r")
    statuses = ["needsAction", "accepted", "declined", "tentative"]
    for person in master["attendees"]:
        person["responseStatus"] = draw(st.sampled_from(statuses))
    if draw(st.booleans()):
        master["attendees"].append({"id": "u-zed", "displayName": "Zed", "isOptional": True})
    if draw(st.booleans()):
        master["onlineMeetingInfo"] = {
            "type": "dingtalk",
            "url": "https://meeting.dingtalk.com/j/x1",
        }
    if draw(st.booleans()):
        master["meetingRooms"] = [{"roomId": "r1", "displayName": "Room 7"}]
    pairs = exception_bodies(event, CTX)
    return master, [instance_response(master, rid, body, CTX, NAMES) for rid, body in pairs]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dingtalk_events())
def test_dingtalk_to_ical_to_dingtalk_is_identity(case: tuple[dict[str, Any], list[Any]]) -> None:
    """Random DingTalk event → Event → iCalendar → Event: same event, same DingTalk body."""
    master, instances = case
    event = event_from_dingtalk(master, instances, CTX)
    again = event_from_ical(event_to_ical(event, CTX), CTX)
    assert again == event
    assert event_to_dingtalk(again, CTX) == event_to_dingtalk(event, CTX)
    assert exception_bodies(again, CTX) == exception_bodies(event, CTX)
