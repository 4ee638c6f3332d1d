"""Field merge and conflict policies: what counts as a change, and which value is taken."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from syncd.model import Attendee, Recurrence, Side
from syncd.sync import changed_fields, merge, winner
from syncd.sync.merge import MERGED_FIELDS
from tests.fakes import SH, at, ev


def test_merged_fields_are_every_mapped_field_but_identity_and_time_stamp() -> None:
    """uid and updated never take part in a merge; every other Event field does."""
    assert "uid" not in MERGED_FIELDS
    assert "updated" not in MERGED_FIELDS
    assert {"summary", "start", "end", "attendees", "overrides", "reminders"} <= set(MERGED_FIELDS)


def test_changed_fields_compare_like_fingerprints() -> None:
    """Attendee order and e-mail case are not changes; a new location is."""
    a = ev(attendees=(Attendee("A@x.example"), Attendee("b@x.example")))
    b = ev(attendees=(Attendee("b@x.example"), Attendee("a@x.example")), location="R1")
    assert changed_fields(a, b) == ("location",)
    assert changed_fields(None, b) == MERGED_FIELDS


def test_one_sided_changes_merge_field_by_field() -> None:
    """Each side's own changes are kept; uid becomes the pair's."""
    base = ev()
    d = ev("dingtalk-1", summary="D title", reminders=(15,))
    c = ev("u1", description="C notes")
    result = merge(base, d, c, "newest", uid="u1")
    assert result.conflicts == ()
    e = result.event
    assert (e.uid, e.summary, e.reminders, e.description) == ("u1", "D title", (15,), "C notes")


def test_start_and_end_merge_together() -> None:
    """A move to all-day on one side and an end change on the other is a conflict, not a mix."""
    base = ev()
    d = ev(start=date(2025, 3, 3), end=date(2025, 3, 4), updated=at(9))
    c = ev(end=datetime(2025, 3, 3, 11, tzinfo=SH), updated=at(10))
    result = merge(base, d, c, "newest", uid="u1")
    assert result.conflicts == ("start", "end")
    assert result.winner is Side.CALDAV
    assert (result.event.start, result.event.end) == (c.start, c.end)


def test_recurrence_and_overrides_merge_together() -> None:
    """A series' rule and its overrides come from one side."""
    base = ev(recurrence=Recurrence("FREQ=WEEKLY"))
    d = ev(recurrence=Recurrence("FREQ=WEEKLY;COUNT=5"))
    c = ev(
        recurrence=Recurrence("FREQ=WEEKLY"),
        overrides=(ev(summary="moved", recurrence_id=datetime(2025, 3, 10, 10, tzinfo=SH)),),
    )
    result = merge(base, d, c, "dingtalk", uid="u1")
    assert result.conflicts == ("recurrence", "overrides")
    assert result.event.recurrence == d.recurrence
    assert result.event.overrides == ()


def test_without_a_base_every_difference_is_a_conflict() -> None:
    """Two never-synced versions: each differing field goes to the policy."""
    result = merge(None, ev(summary="a"), ev(summary="b", location="L"), "caldav", uid="u1")
    assert result.conflicts == ("summary", "location")
    assert (result.event.summary, result.event.location) == ("b", "L")


@pytest.mark.parametrize(
    ("d", "c", "expected"),
    [
        (at(10), at(11), Side.CALDAV),
        (at(11), at(10), Side.DINGTALK),
        (at(10), at(10), Side.DINGTALK),
        (None, at(10), Side.CALDAV),
        (at(10), None, Side.DINGTALK),
        (None, None, Side.DINGTALK),
    ],
)
def test_newest_policy_compares_update_times(
    d: datetime | None, c: datetime | None, expected: Side
) -> None:
    """newest: the later time wins; ties and unknown times favour DingTalk."""
    assert winner("newest", ev(updated=d), ev(updated=c)) is expected


def test_merged_event_keeps_the_newest_update_time() -> None:
    """The merged event's updated stamp is the later of the two."""
    result = merge(
        ev(), ev(summary="x", updated=at(8)), ev(location="y", updated=at(9)), "newest", uid="u1"
    )
    assert result.event.updated == at(9)


def test_merge_compares_each_side_with_what_it_held() -> None:
    """A side holding a folded title has not edited it; the other side's edit is taken."""
    base = ev(summary="a  b")
    held = {Side.DINGTALK: base, Side.CALDAV: ev(summary="a b")}
    result = merge(base, ev(summary="new"), ev(summary="a b", location="L"), "caldav", uid="u1",
                   held=held)  # fmt: skip
    assert result.conflicts == ()
    assert (result.event.summary, result.event.location) == ("new", "L")
    assert result.writes == {Side.DINGTALK: ("location",), Side.CALDAV: ("summary",)}


def test_fields_neither_side_changed_keep_the_base_and_are_not_written() -> None:
    """A field a side cannot hold keeps the agreed value and causes no write to that side."""
    base = ev(description="notes")
    held = {Side.DINGTALK: ev(description=""), Side.CALDAV: base}
    result = merge(base, ev(description="", summary="x"), base, "newest", uid="u1", held=held)
    assert (result.event.summary, result.event.description) == ("x", "notes")
    assert result.writes == {Side.DINGTALK: (), Side.CALDAV: ("summary",)}
