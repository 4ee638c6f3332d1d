"""Filters and transforms as pure functions: properties (Hypothesis) and decision tables."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import Attendee, Event, Recurrence
from syncd.sync.shaping import (
    BUSY_FIELDS,
    Filter,
    Shaping,
    busy_back,
    busy_projection,
    passes,
    prefix_back,
    prefix_out,
    rejection,
)
from tests.fakes import SH, ev

ALICE = "alice@acme.example"
PREFIXES = st.sampled_from(["[DT] ", "DT:", "⟲", "(copy) ", "[DT] [DT] "])
TEXT = st.text(max_size=30)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Events with every mapped field varied, possibly a series with moved occurrences."""
    start = datetime(2025, 3, 3, draw(st.integers(0, 20)), tzinfo=SH)
    all_day = draw(st.booleans())
    begin: date | datetime = start.date() if all_day else start
    finish: date | datetime = begin + (timedelta(days=1) if all_day else timedelta(minutes=30))
    people = draw(
        st.lists(
            st.builds(
                Attendee,
                st.sampled_from([ALICE, "bob@acme.example", "carol@x.example"]),
                st.just(""),
                st.sampled_from(["needs-action", "accepted", "declined", "tentative"]),
            ),
            max_size=3,
            unique_by=lambda a: a.email,
        )
    )
    base = Event(
        uid="u1",
        summary=draw(TEXT),
        start=begin,
        end=finish,
        description=draw(TEXT),
        location=draw(TEXT),
        status=draw(st.sampled_from(["confirmed", "tentative"])),
        privacy=draw(st.sampled_from(["public", "private", "confidential"])),
        free_busy=draw(st.sampled_from(["busy", "free"])),
        organizer=draw(st.none() | st.just("bob@acme.example")),
        attendees=tuple(people),
        reminders=tuple(sorted(draw(st.lists(st.integers(0, 60), max_size=2)))),
        online_meeting_url=draw(st.none() | st.just("https://meet.example/x")),
    )
    if all_day or not draw(st.booleans()):
        return base
    moved = dataclasses.replace(
        base,
        summary=draw(TEXT),
        recurrence_id=start + timedelta(days=1),
        start=start + timedelta(days=1, hours=2),
        end=start + timedelta(days=1, hours=3),
    )
    series = Recurrence("FREQ=DAILY;COUNT=5", (start + timedelta(days=2),))
    return dataclasses.replace(base, recurrence=series, overrides=(moved,))


# --- prefix ------------------------------------------------------------------------------


@given(TEXT, PREFIXES)
def test_prefix_round_trip_is_the_identity_on_what_the_copy_holds(title: str, prefix: str) -> None:
    """out(back(out(s))) == out(s) for a title without the mark: a copy syncd wrote, read
    back and written again, is unchanged; out is idempotent and always marks."""
    copy = prefix_out(title, prefix)
    assert prefix_out(copy, prefix) == copy
    assert copy.startswith(prefix)
    if not title.startswith(prefix):
        assert prefix_out(prefix_back(copy, prefix), prefix) == copy


@given(st.integers(0, 4), TEXT, PREFIXES, st.integers(1, 6))
def test_prefix_round_trips_never_accumulate(marks: int, rest: str, prefix: str, n: int) -> None:
    """Any number of round trips (copy -> back -> copy ...) never lengthens a title, and
    settles after one: a title typed with the mark several times only loses marks."""
    title = prefix * marks + rest
    copy = prefix_out(title, prefix)
    seen = [copy]
    for _ in range(n):
        seen.append(prefix_out(prefix_back(seen[-1], prefix), prefix))
    assert all(len(b) <= len(a) for a, b in itertools.pairwise(seen))
    assert all(s.startswith(prefix) for s in seen)
    if not title.startswith(prefix * 2):
        assert set(seen) == {copy}


@given(TEXT, PREFIXES)
def test_prefix_back_undoes_prefix_out_for_unmarked_titles(title: str, prefix: str) -> None:
    """A title that does not already carry the mark comes back exactly as it was."""
    if title.startswith(prefix):
        return
    assert prefix_back(prefix_out(title, prefix), prefix) == title


@given(TEXT, PREFIXES)
def test_a_title_without_the_mark_comes_back_as_typed(title: str, prefix: str) -> None:
    """The user removed the prefix in the copy: the source gets what they typed."""
    if title.startswith(prefix):
        return
    assert prefix_back(title, prefix) == title


@given(TEXT)
def test_empty_prefix_changes_nothing(title: str) -> None:
    """No prefix configured: both directions are the identity."""
    assert prefix_out(title, "") == prefix_back(title, "") == title


# --- busy projection ---------------------------------------------------------------------


@given(events(), st.sampled_from(["Busy", "忙碌", "Occupied"]))
def test_busy_projection_is_idempotent_and_keeps_only_time(event: Event, title: str) -> None:
    """Projecting twice is projecting once; only time, recurrence and free/busy survive."""
    once = busy_projection(event, title)
    assert busy_projection(once, title) == once
    assert once.summary == title
    kept = (*BUSY_FIELDS, "uid")
    for f in dataclasses.fields(Event):
        if f.name in kept:
            assert getattr(once, f.name) == getattr(event, f.name)
    assert (once.description, once.location, once.attendees, once.reminders) == ("", "", (), ())
    assert (once.organizer, once.online_meeting_url, once.privacy) == (None, None, "public")
    assert [o.summary for o in once.overrides] == [title] * len(event.overrides)
    assert [o.start for o in once.overrides] == [o.start for o in event.overrides]


@given(events(), events())
def test_busy_back_takes_time_from_the_copy_and_the_rest_from_the_source(
    source: Event, other: Event
) -> None:
    """What a busy copy says of its source: the copy's time fields, the source's details."""
    copy = busy_projection(other)
    back = busy_back(copy, source)
    for name in BUSY_FIELDS:
        assert getattr(back, name) == getattr(copy, name)
    assert (back.summary, back.description, back.attendees) == (
        source.summary,
        source.description,
        source.attendees,
    )
    assert busy_projection(back) == dataclasses.replace(copy, uid=source.uid)


@given(events())
def test_busy_round_trip_is_the_identity_on_source_and_copy(event: Event) -> None:
    """back(out(e), e) == e, and out(back(c, e)) == c for the copy c = out(e)."""
    shaping = Shaping(mirror_busy=True, summary_prefix="[DT] ")
    copy = shaping.out(event)
    assert shaping.back(copy, event) == event
    assert shaping.out(shaping.back(copy, event)) == copy
    assert shaping.norm(copy) == copy


@given(events(), TEXT, TEXT)
def test_busy_copy_fingerprint_ignores_title_and_description(
    event: Event, title: str, text: str
) -> None:
    """A title or description change of the source leaves the busy copy unchanged."""
    edited = dataclasses.replace(event, summary=title, description=text, location=text)
    assert busy_projection(edited).fingerprint() == busy_projection(event).fingerprint()


@given(events(), st.integers(1, 5))
def test_busy_copy_fingerprint_follows_time(event: Event, hours: int) -> None:
    """A time change of the source changes the busy copy."""
    if event.all_day:
        return
    later = dataclasses.replace(event, start=event.start + timedelta(hours=hours))
    assert busy_projection(later).fingerprint() != busy_projection(event).fingerprint()


@given(events(), PREFIXES, TEXT)
def test_full_copy_with_prefix_round_trips(event: Event, prefix: str, edit: str) -> None:
    """A copy's title edit comes back without the mark; nothing else of the copy changes."""
    shaping = Shaping(summary_prefix=prefix)
    copy = shaping.out(event)
    assert shaping.out(shaping.back(copy, None)) == copy
    if not edit.startswith(prefix):
        edited = dataclasses.replace(copy, summary=prefix + edit)
        assert shaping.back(edited, None).summary == edit


# --- filter ------------------------------------------------------------------------------


@given(events())
def test_an_inactive_filter_passes_everything(event: Event) -> None:
    """No rule on: every event passes."""
    assert not Filter().active
    assert passes(Filter(), event, ALICE)


@given(events())
def test_each_rule_rejects_exactly_what_it_names(event: Event) -> None:
    """Every rule agrees with its definition, one rule at a time."""
    declined = any(a.email == ALICE and a.partstat == "declined" for a in event.attendees)
    assert passes(Filter(skip_declined=True), event, ALICE) is not declined
    assert passes(Filter(skip_all_day=True), event, ALICE) is not event.all_day
    assert passes(Filter(skip_private=True), event, ALICE) is (event.privacy == "public")
    assert passes(Filter(skip_free=True), event, ALICE) is (event.free_busy == "busy")
    rules = Filter.build(exclude_summary=["(?i)^private:"])
    assert passes(rules, event, ALICE) is not event.summary.lower().startswith("private:")


@given(events())
def test_skip_declined_without_a_bound_user_rejects_nothing(event: Event) -> None:
    """skip_declined without a bound user never rejects (no one to have declined)."""
    assert passes(Filter(skip_declined=True), event, None)


@pytest.mark.parametrize(
    ("rules", "event", "reason"),
    [
        (
            Filter(skip_declined=True),
            ev(attendees=(Attendee(ALICE.upper(), partstat="declined"),)),
            "declined by the bound user",
        ),
        (Filter(skip_declined=True), ev(attendees=(Attendee("bob@x", partstat="declined"),)), None),
        (Filter(skip_all_day=True), ev(start=date(2025, 3, 3), end=date(2025, 3, 4)), "all-day"),
        (Filter(skip_private=True), ev(privacy="confidential"), "confidential"),
        (Filter(skip_free=True), ev(free_busy="free"), "free (transparent)"),
        (
            Filter.build(exclude_summary=["lunch", "(?i)^private:"]),
            ev(summary="Private: dentist"),
            "summary matches '(?i)^private:'",
        ),
        (Filter.build(exclude_summary=["^lunch$"]), ev(summary="Team lunch"), None),
    ],
)
def test_rejection_reasons(rules: Filter, event: Event, reason: str | None) -> None:
    """Each rule gives its one-line reason; unrelated events pass."""
    assert rejection(rules, event, ALICE) == reason


def test_shaping_reasons_are_marked_filtered() -> None:
    """The binding-level reason starts with "filtered:" (how plans and logs name it)."""
    shaping = Shaping(filter=Filter(skip_free=True))
    assert shaping.rejection(ev(free_busy="free")) == "filtered: free (transparent)"
    assert shaping.rejection(ev()) is None


def test_a_bad_pattern_is_refused_when_built() -> None:
    """Configuration validates patterns; building a filter from a bad one raises re.error."""
    with pytest.raises(re.error):
        Filter.build(exclude_summary=["([unclosed"])


@settings(max_examples=50)
@given(events())
def test_shaping_without_transforms_is_the_identity(event: Event) -> None:
    """A binding without mirror or prefix copies events unchanged both ways."""
    shaping = Shaping()
    assert not shaping.transforms
    assert shaping.out(event) == shaping.back(event, None) == event
