"""Real-world corpora: every .ics in the icalendar and recurring-ical-events wheels.

Each file is split into calendar object resources per UID (with its VTIMEZONEs). Every
resource must either round-trip (iCalendar → Event → iCalendar → Event fingerprint-stable,
and Event → DingTalk body → response shape → Event keeping the occurrences over two years,
summary, location and description), or raise Unrepresentable / BrokenCalendarData with a
reason. Any other exception, or a silent difference, fails the run. Timed events are
compared by instant, all-day ones by date (invalid mixes of the two are reported).
"""

from __future__ import annotations

import collections
import dataclasses
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar, Component

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import Event
from syncd.translate import (
    as_dingtalk_keeps,
    event_from_dingtalk,
    event_from_ical,
    event_to_dingtalk,
    event_to_ical,
    exception_bodies,
)
from tests.fixtures.dingtalk_shapes import CTX, dingtalk_response, instance_response
from tests.fixtures.dingtalk_side import CTX as SANDBOX_CTX
from tests.fixtures.dingtalk_side import sandbox_read, sandbox_write
from tests.fixtures.sandbox import SandboxApi

TZ = ZoneInfo(CTX.timezone)


def corpus_files() -> list[Path]:
    """Every .ics shipped in the two wheels (read in place, never copied)."""
    roots = [
        files("icalendar") / "tests" / "calendars",
        files("recurring_ical_events") / "test" / "calendars",
    ]
    return sorted(Path(str(p)) for root in roots for p in root.iterdir() if p.name.endswith(".ics"))


def resources(path: Path) -> Iterator[tuple[str, str]]:
    """``(label, text)`` of each calendar object resource in a file; unparseable files whole."""
    text = path.read_text(errors="replace")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cals = Calendar.from_ical(text, multiple=True)
    except Exception:  # a broken file goes in whole: event_from_ical must reject it cleanly
        yield path.name, text
        return
    for n, cal in enumerate(cals):
        zones = cal.walk("VTIMEZONE")
        groups: dict[str, list[Component]] = collections.defaultdict(list)
        for i, ev in enumerate(cal.walk("VEVENT")):
            groups[str(ev.get("UID", "")) or f"(no UID #{i})"].append(ev)
        for uid, events in groups.items():
            out = Calendar()
            out.add("prodid", "-//corpus//EN")
            out.add("version", "2.0")
            for item in [*zones, *events]:
                out.add_component(item)
            yield f"{path.name}#{n}:{uid}", out.to_ical().decode()


def occurrences(text: str, start: Any, by_date: bool) -> set[str]:
    """Start instants (or local dates) of the non-cancelled occurrences over two years."""
    first = start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
    first = first.replace(tzinfo=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calendar.from_ical(text)
        found = recurring_ical_events.of(cal).between(
            first - timedelta(days=1), first + timedelta(days=731)
        )
    return {
        _instant(o["DTSTART"].dt, by_date)
        for o in found
        if str(o.get("STATUS", "")).upper() != "CANCELLED"
    }


def _instant(value: Any, by_date: bool) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=TZ)
        if by_date:
            return aware.astimezone(TZ).date().isoformat()
        return aware.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")
    assert isinstance(value, date)
    return value.isoformat()


def through_dingtalk(event: Event) -> Event:
    """Event → body → DingTalk's response shape (plus exception instances) → Event."""
    master = dingtalk_response(event_to_dingtalk(event, CTX), CTX, event_id="corpus-1")
    instances = [
        instance_response(master, rid, body, CTX) for rid, body in exception_bodies(event, CTX)
    ]
    return event_from_dingtalk(master, instances, CTX)


def check(text: str) -> str:
    """One resource: 'identical', or 'unrepresentable: reason' / 'broken: reason'."""
    try:
        event = event_from_ical(text, CTX)
    except Unrepresentable as exc:
        return f"unrepresentable: {exc}"
    except BrokenCalendarData as exc:
        return f"broken: {str(exc)[:60]}"
    again = event_from_ical(event_to_ical(event, CTX), CTX)
    assert again.fingerprint() == event.fingerprint(), (event, again)
    try:
        back = through_dingtalk(event)
    except Unrepresentable as exc:
        return f"unrepresentable in DingTalk: {exc}"
    assert (back.summary, back.location) == (as_dingtalk_keeps(event, CTX).summary, event.location)
    assert back.description == event.description[: len(back.description)]
    if event.recurrence_id is None:
        by_date = event.all_day
        original = occurrences(text, event.start, by_date)
        ours = event_to_ical(dataclasses.replace(back, uid=event.uid), CTX)
        assert occurrences(ours, event.start, by_date) == original
    return "identical"


def run() -> collections.Counter[str]:
    """Counts per outcome over the whole corpus (used by the test and by the report)."""
    counts: collections.Counter[str] = collections.Counter()
    for path in corpus_files():
        for label, text in resources(path):
            try:
                counts[check(text)] += 1
            except AssertionError as exc:
                raise AssertionError(f"{label}: {str(exc)[:2000]}") from exc
    return counts


@pytest.mark.corpus
def test_corpus_round_trips_or_is_reported(record_property: Any) -> None:
    """Every corpus resource round-trips or is rejected with a reason; nothing else."""
    counts = run()
    record_property("corpus_counts", dict(counts))
    assert sum(counts.values()) > 1000
    assert counts["identical"] > 0.9 * sum(counts.values()), counts
    rejected = [k for k in counts if k != "identical"]
    assert all(k.startswith(("broken: ", "unrepresentable")) and len(k) > 20 for k in rejected)
    assert not [k for k in rejected if "syncd's limit" in k]  # limits never bite real data


@pytest.mark.corpus
async def test_corpus_through_the_sandbox(sandbox_api: SandboxApi) -> None:
    """Every corpus event DingTalk can hold is stored by the sandbox and read back as predicted."""
    counts: collections.Counter[str] = collections.Counter()
    for path in corpus_files():
        for label, text in resources(path):
            try:
                event = event_from_ical(text, SANDBOX_CTX)
                event_to_dingtalk(event, SANDBOX_CTX)
            except (Unrepresentable, BrokenCalendarData):
                counts["skipped"] += 1
                continue
            back = await sandbox_read(sandbox_api, await sandbox_write(sandbox_api, event))
            expected = as_dingtalk_keeps(event, SANDBOX_CTX)
            assert back.fingerprint() == expected.fingerprint(), (label, back, expected)
            status, _ = await sandbox_api.call("POST", "/_sandbox/reset")
            assert status == 200
            counts["identical"] += 1
    assert counts["identical"] > 1000, counts


def test_value_type_matrix_of_the_corpus_is_read_or_reported() -> None:
    """recurring-ical-events' issue-201 matrix: every agreeing pair is identical, every
    mix RFC 5545 forbids is reported naming the properties, none is guessed."""
    (path,) = [p for p in corpus_files() if p.name == "issue_201_test_matrix.ics"]
    outcomes = {label.rsplit(":", 1)[1]: check(text) for label, text in resources(path)}
    mixes = {"DATE-DATETIME", "DATE-UTC", "DATE-HOURS", "DATETIME-DATE", "DATETIME-UTC"}
    mixes |= {"UTC-DATE", "UTC-DATETIME"}
    assert len(outcomes) == 15  # DATE, DATETIME, UTC starts x DATE, DATETIME, UTC, DAYS, HOURS
    for uid, outcome in outcomes.items():
        if uid.removeprefix("VEVENT-") in mixes:
            assert outcome.startswith("broken: DTSTART is "), (uid, outcome)
        else:
            assert outcome == "identical", (uid, outcome)
