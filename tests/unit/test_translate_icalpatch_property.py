"""Property: patch_ical reaches the target and keeps every unmapped line (Hypothesis).

Stored objects are random events and series rendered by ``event_to_ical`` with unknown
properties, parameters, components and alarms injected into every VEVENT; targets are
random edits of them (every mapped field, overrides added/removed/edited, exdates).
``event_from_ical(patch_ical(stored, target))`` must have the target's fingerprint, no
fallback to a full rendering may happen, and every unmapped line of every VEVENT the
target keeps must still be there (attendee and organizer parameters included).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from syncd.model import Attendee, Event, Recurrence, When
from syncd.translate import event_from_ical, event_to_ical, patch_ical
from syncd.translate._lines import Block, parse
from tests.unit.test_translate_icalpatch import CTX

ZONES = ["Asia/Shanghai", "Europe/Berlin", "UTC"]
PEOPLE = ["bob@acme.example", "carol@acme.example", "eve@outside.example", "dan@outside.example"]
TEXT = st.text(alphabet='ab ,;:\\\n"é中', max_size=12)
MAPPED = {
    "UID", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "DTSTART", "DTEND", "DURATION",
    "RECURRENCE-ID", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS", "CLASS", "TRANSP",
    "RRULE", "EXDATE", "URL", "CONFERENCE", "ORGANIZER", "ATTENDEE",
}  # fmt: skip


@st.composite
def attendees(draw: st.DrawFn) -> tuple[Attendee, ...]:
    emails = draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=3))
    return tuple(
        Attendee(
            e,
            draw(st.sampled_from(["", "Bob B", "X, Y"])),
            draw(st.sampled_from(["needs-action", "accepted", "declined", "tentative"])),
            draw(st.booleans()),
        )
        for e in sorted(emails)
    )


@st.composite
def fields(draw: st.DrawFn) -> dict[str, object]:
    """Random values for the single-event mapped fields (times excluded)."""
    return {
        "summary": draw(TEXT),
        "description": draw(TEXT),
        "location": draw(TEXT),
        "status": draw(st.sampled_from(["confirmed", "tentative"])),
        "privacy": draw(st.sampled_from(["public", "private", "confidential"])),
        "free_busy": draw(st.sampled_from(["busy", "free"])),
        "organizer": draw(st.sampled_from([None, "alice@acme.example", "frank@acme.example"])),
        "attendees": draw(attendees()),
        "reminders": tuple(sorted(draw(st.sets(st.sampled_from([0, 5, 15, 60, 1440]))))),
        "online_meeting_url": draw(st.sampled_from([None, "https://m.example/1", "https://m/2"])),
    }


def _start(all_day: bool, zone: str, hour: int) -> When:
    if all_day:
        return date(2027, 1, 4)
    return datetime(2027, 1, 4, hour, tzinfo=ZoneInfo(zone))


@st.composite
def events(draw: st.DrawFn) -> Event:
    all_day = draw(st.booleans())
    start = _start(all_day, draw(st.sampled_from(ZONES)), draw(st.integers(6, 20)))
    length = timedelta(days=1) if all_day else timedelta(minutes=draw(st.sampled_from([30, 90])))
    event = Event(uid="p@x", start=start, end=start + length, **draw(fields()))  # type: ignore[arg-type]
    if not draw(st.booleans()):
        return event
    week = timedelta(days=7)
    weeks = draw(st.sets(st.integers(1, 5), max_size=3))
    cancelled = draw(st.sets(st.integers(1, 5), max_size=2)) - weeks
    overrides = []
    for n in sorted(weeks):
        rid = start + n * week
        shift = timedelta(days=1) if all_day else timedelta(hours=draw(st.integers(0, 3)))
        base = dataclasses.replace(event, **draw(fields()))  # type: ignore[arg-type]
        overrides.append(
            dataclasses.replace(
                base, start=rid + shift, end=rid + shift + length, recurrence_id=rid
            )
        )
    rule = Recurrence("FREQ=WEEKLY;COUNT=6", tuple(start + n * week for n in sorted(cancelled)))
    return dataclasses.replace(event, recurrence=rule, overrides=tuple(overrides))


def canonical(event: Event) -> Event:
    """The event as the iCalendar side reads it back (the only form a target can have)."""
    return event_from_ical(event_to_ical(event, CTX), CTX)


INJECT = (
    "CATEGORIES:Work,Project\r\nCOLOR:turquoise\r\nGEO:1.5;2.5\r\n"
    "X-UNMAPPED-{n};X-P=v{n}:value {n}\r\nATTACH;FMTTYPE=text/plain:https://f.example/{n}\r\n"
    "BEGIN:VALARM\r\nACTION:AUDIO\r\nTRIGGER;RELATED=END:PT5M\r\nX-KEEP:{n}\r\nEND:VALARM\r\n"
    "BEGIN:VLOCATION\r\nUID:loc-{n}\r\nNAME:Building {n}\r\nEND:VLOCATION\r\n"
    "BEGIN:X-THING\r\nX-A:{n}\r\nEND:X-THING\r\n"
)


NAME = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=8).filter(
    lambda n: not n.startswith("-") and not n.endswith("-")
)
PARAM = st.one_of(
    st.text(alphabet="abcxyz0123", min_size=1, max_size=6),
    st.text(alphabet="ab:;, ", min_size=1, max_size=6).map(lambda v: f'"{v}"'),
)
VALUE = st.text(alphabet="abc xyz,;:=\"'é中", max_size=20)


@st.composite
def unknown_lines(draw: st.DrawFn) -> str:
    """Random ``X-`` properties with random ``X-`` parameters (one block per VEVENT)."""
    lines = []
    for name in draw(st.lists(NAME, max_size=4, unique=True)):
        params = draw(st.lists(st.tuples(NAME, PARAM), max_size=2, unique_by=lambda p: p[0]))
        text = "".join(f";X-{k}={v}" for k, v in params)
        lines.append(f"X-{name}{text}:{draw(VALUE)}\r\n")
    return "".join(lines)


def inject(text: str, extra: str = "") -> str:
    """Unmapped lines, parameters and components in every VEVENT."""
    parts = text.split("END:VEVENT\r\n")
    out = "".join(
        p + INJECT.format(n=i) + extra + "END:VEVENT\r\n" for i, p in enumerate(parts[:-1])
    )
    out += parts[-1]
    out = out.replace("\r\nATTENDEE;", "\r\nATTENDEE;X-A=1;SCHEDULE-STATUS=2.0;")
    return out.replace("\r\nORGANIZER;", "\r\nORGANIZER;X-O=2;")


def unmapped(block: Block) -> Counter[str]:
    """Unmapped lines of one VEVENT (and its sub-components, kept alarms only)."""
    found: Counter[str] = Counter(line.text for line in block.lines() if line.name not in MAPPED)
    for sub in block.blocks():
        if sub.name == "VALARM" and not sub.lines("X-KEEP"):
            continue
        for inner in sub.walk():
            found.update(f"{inner.name} {line.text}" for line in inner.lines())
    return found


def by_rid(text: str) -> dict[str, Block]:
    top = parse(text)
    out = {}
    for block in top.blocks("VEVENT"):
        rid = block.lines("RECURRENCE-ID")
        out[rid[0].text if rid else "master"] = block
    return out


@st.composite
def edits(draw: st.DrawFn, stored: Event) -> Event:
    """A random edit of ``stored``: fields, times, overrides and exdates."""
    target = dataclasses.replace(stored, **draw(fields()))  # type: ignore[arg-type]
    if draw(st.booleans()):
        other = draw(events())
        target = dataclasses.replace(target, start=other.start, end=other.end)
        if stored.recurrence is not None and other.recurrence is None:
            target = dataclasses.replace(target, recurrence=None, overrides=())
    if target.recurrence is not None and draw(st.booleans()):
        keep = [o for o in target.overrides if draw(st.booleans())]
        edited = [dataclasses.replace(o, summary=draw(TEXT)) for o in keep]
        target = dataclasses.replace(target, overrides=tuple(edited))
    return canonical(target)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_patch_reaches_the_target_and_keeps_every_unmapped_line(data: st.DataObject) -> None:
    """Fingerprint of the target, no fallback, nothing unmapped lost."""
    base = canonical(data.draw(events()))
    stored = inject(event_to_ical(base, CTX), data.draw(unknown_lines()))
    current = event_from_ical(stored, CTX)
    assert current.fingerprint() == base.fingerprint()
    target = data.draw(edits(current))
    with capture_logs() as logs:
        patched = patch_ical(stored, target, CTX)
    assert [e for e in logs if e["event"] == "ical_patch_fallback"] == []
    assert event_from_ical(patched, CTX).fingerprint() == target.fingerprint()
    before, after = by_rid(stored), by_rid(patched)
    for key, block in before.items():
        if key not in after:
            assert key != "master"
            continue  # an override the target cancelled or that is no occurrence any more
        assert unmapped(block) - unmapped(after[key]) == Counter(), key
        for line in after[key].lines("ATTENDEE"):
            if line.text.split(":", 1)[-1] in {
                x.text.split(":", 1)[-1] for x in block.lines("ATTENDEE")
            }:
                assert "X-A=1" in line.text
                assert "SCHEDULE-STATUS=2.0" in line.text
        for line in after[key].lines("ORGANIZER"):
            if block.lines("ORGANIZER"):
                assert "X-O=2" in line.text


def test_removed_overrides_are_only_cancelled_or_gone_occurrences() -> None:
    """The one exemption above is narrow: a kept override of the target keeps its VEVENT."""
    base = canonical(
        dataclasses.replace(
            Event(uid="p@x", summary="s", start=date(2027, 1, 4), end=date(2027, 1, 5)),
            recurrence=Recurrence("FREQ=WEEKLY;COUNT=6"),
        )
    )
    rid = date(2027, 1, 11)
    moved = dataclasses.replace(
        base,
        recurrence=None,
        recurrence_id=rid,
        start=rid,
        end=rid + timedelta(days=1),
        summary="m",
    )
    series = canonical(dataclasses.replace(base, overrides=(moved,)))
    stored = inject(event_to_ical(series, CTX))
    target = canonical(dataclasses.replace(series, summary="new"))
    after = by_rid(patch_ical(stored, target, CTX))
    assert set(after) == set(by_rid(stored))
