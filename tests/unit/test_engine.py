"""Planner table tests: one test per branch of the three-way decision table (two-way binding)."""

from __future__ import annotations

import dataclasses

import pytest

from syncd.model import Side
from syncd.sync import Conflict, Create, Delete, Forget, Policy, Record, Skip, Update, settle
from syncd.sync.ports import Written
from tests.fakes import at, ev, full, inc, kinds, paired, pairs, r, run, sides


def test_unchanged_pairs_and_empty_listings_plan_nothing() -> None:
    """No reported change on either side: an empty plan."""
    assert list(run(pairs(paired(ev())))) == []


def test_new_dingtalk_event_is_created_on_caldav() -> None:
    """An event new in DingTalk becomes one Create on CalDAV with a pair template."""
    e = ev("dingtalk-x@syncd")
    (action,) = run({}, inc(r("dt-9", e)))
    assert isinstance(action, Create)
    assert (action.target, action.uid, action.event) == (Side.CALDAV, e.uid, e)
    assert (action.source_id, action.source_fp) == ("dt-9", e.fingerprint())
    assert (action.pair.dingtalk_id, action.pair.caldav_href, action.pair.origin) == (
        "dt-9",
        None,
        Side.DINGTALK,
    )


def test_new_caldav_event_is_created_on_dingtalk_keeping_its_etag() -> None:
    """An event new in CalDAV becomes a Create on DingTalk; its etag is kept."""
    e = ev("cal-1")
    (action,) = run({}, caldav=inc(r("cal-1.ics", e, '"7"')))
    assert isinstance(action, Create)
    assert action.target is Side.DINGTALK
    assert (action.pair.caldav_href, action.pair.caldav_etag) == ("cal-1.ics", '"7"')


def test_echo_of_our_own_write_is_not_a_change() -> None:
    """Our write read back (same fingerprint, same etag) plans nothing."""
    p = paired(ev())
    assert list(run(pairs(p), caldav=inc(r("u1.ics", ev(), '"e1"')))) == []


def test_etag_change_with_same_content_only_records_the_new_etag() -> None:
    """Scenarios 6/7: a new etag with identical content refreshes the pair, writes nothing."""
    p = paired(ev())
    (action,) = run(pairs(p), caldav=inc(r("u1.ics", ev(), '"e2"')))
    assert isinstance(action, Record)
    assert action.pair == dataclasses.replace(p, caldav_etag='"e2"')


def test_edit_on_dingtalk_updates_caldav_under_the_stored_etag() -> None:
    """Only DingTalk changed and CalDAV was not read: update with the stored etag."""
    p = paired(ev())
    new = ev(summary="Standup (moved)")
    (action,) = run(pairs(p), inc(r("dt-1", new)))
    assert isinstance(action, Update)
    assert (action.target, action.target_id, action.etag) == (Side.CALDAV, "u1.ics", '"e1"')
    assert (action.event.summary, action.fields) == ("Standup (moved)", ("summary",))
    assert action.pair.base == new
    assert action.pair.dingtalk_fp == new.fingerprint()


def test_edit_on_caldav_updates_dingtalk_with_the_pair_uid() -> None:
    """Only CalDAV changed: update DingTalk; the written event carries the pair's uid."""
    p = paired(ev())
    new = ev(location="Room 5")
    (action,) = run(pairs(p), caldav=inc(r("u1.ics", new, '"e2"')))
    assert isinstance(action, Update)
    assert (action.target, action.target_id, action.event.uid) == (Side.DINGTALK, "dt-1", "u1")
    assert action.pair.caldav_etag == '"e2"'


def test_dingtalk_copy_of_caldav_event_keeps_caldav_uid_when_written_back() -> None:
    """A DingTalk item reading back with its own uid is written to CalDAV under the pair uid."""
    p = paired(ev("cal-7"), href="cal-7.ics")
    dt_view = ev("dingtalk-dt-1", summary="Renamed")
    (action,) = run(pairs(p), inc(r("dt-1", dt_view)))
    assert isinstance(action, Update)
    assert action.event.uid == "cal-7"


def test_same_edit_on_both_sides_is_recorded_without_writes() -> None:
    """Identical edits on both sides: a Record, no conflict, no write."""
    new = ev(summary="Both")
    (action,) = run(pairs(paired(ev())), inc(r("dt-1", new)), inc(r("u1.ics", new, '"e2"')))
    assert isinstance(action, Record)
    assert action.pair.dingtalk_fp == action.pair.caldav_fp == new.fingerprint()


def test_different_fields_edited_on_both_sides_merge_without_conflict() -> None:
    """Both changed, in different fields: each side gets the other's field; no conflict."""
    d = ev(summary="New title")
    c = ev(location="Room 5")
    plan = run(pairs(paired(ev())), inc(r("dt-1", d)), inc(r("u1.ics", c, '"e2"')))
    assert sides(plan) == [("Update", Side.DINGTALK), ("Update", Side.CALDAV)]
    for action in plan:
        assert isinstance(action, Update)
        assert (action.event.summary, action.event.location) == ("New title", "Room 5")
    assert [a.fields for a in plan if isinstance(a, Update)] == [("location",), ("summary",)]


@pytest.mark.parametrize(
    ("policy", "d_time", "c_time", "winner"),
    [
        ("newest", 9, 10, Side.CALDAV),
        ("newest", 11, 10, Side.DINGTALK),
        ("newest", 10, 10, Side.DINGTALK),  # a tie goes to DingTalk
        ("dingtalk", 9, 10, Side.DINGTALK),
        ("caldav", 11, 10, Side.CALDAV),
    ],
)
def test_same_field_edited_differently_is_a_conflict_decided_by_policy(
    policy: str, d_time: int, c_time: int, winner: Side
) -> None:
    """A field changed differently on both sides goes to the policy, recorded."""
    d = ev(summary="From DingTalk", updated=at(d_time))
    c = ev(summary="From CalDAV", updated=at(c_time))
    plan = run(
        pairs(paired(ev())),
        inc(r("dt-1", d)),
        inc(r("u1.ics", c, '"e2"')),
        Policy(conflict=policy),  # type: ignore[arg-type]
    )
    conflict, update = plan.actions
    assert isinstance(conflict, Conflict)
    assert isinstance(update, Update)
    assert conflict.record.winner is winner
    assert conflict.record.fields == ("summary",)
    assert (conflict.record.dingtalk, conflict.record.caldav) == (d, c)
    assert conflict.record.decided_at == "2025-03-01T12:00:00+00:00"
    assert update.target is winner.other
    assert update.event.summary == (d if winner is Side.DINGTALK else c).summary


def test_conflict_plus_merge_updates_both_sides() -> None:
    """A conflicting field and a one-sided field: the loser gets both, the winner the other's."""
    d = ev(summary="D", description="d notes", updated=at(11))
    c = ev(summary="C", updated=at(10))
    plan = run(pairs(paired(ev())), inc(r("dt-1", d)), inc(r("u1.ics", c, '"e2"')))
    assert kinds(plan) == ["Conflict", "Update"]
    (update,) = plan.writes
    assert isinstance(update, Update)
    assert update.target is Side.CALDAV
    assert (update.event.summary, update.event.description) == ("D", "d notes")
    c2 = ev(summary="C", location="c room", updated=at(10))
    plan = run(pairs(paired(ev())), inc(r("dt-1", d)), inc(r("u1.ics", c2, '"e2"')))
    assert sides(plan) == [
        ("Conflict", None),
        ("Update", Side.DINGTALK),
        ("Update", Side.CALDAV),
    ]


def test_moved_href_with_same_uid_repoints_the_pair() -> None:
    """Href renamed with the same UID (incremental): a Record, no delete, no create."""
    p = paired(ev())
    plan = run(pairs(p), caldav=inc(r("moved.ics", ev(), '"e5"'), deleted=("u1.ics",)))
    (action,) = plan
    assert isinstance(action, Record)
    assert (action.pair.caldav_href, action.pair.caldav_etag) == ("moved.ics", '"e5"')


def test_moved_href_in_a_full_listing_is_still_a_move() -> None:
    """Full listing: the old href's absence is not a deletion when the UID moved."""
    plan = run(pairs(paired(ev())), caldav=full(r("moved.ics", ev(), '"e5"')))
    assert kinds(plan) == ["Record"]


def test_delete_on_dingtalk_deletes_on_caldav() -> None:
    """DingTalk reports the id deleted, CalDAV unchanged: Delete on CalDAV."""
    (action,) = run(pairs(paired(ev())), inc(deleted=("dt-1",)))
    assert isinstance(action, Delete)
    assert (action.target, action.target_id, action.etag) == (Side.CALDAV, "u1.ics", '"e1"')


def test_cancelled_status_counts_as_deleted() -> None:
    """A DingTalk item listed as cancelled is a deletion."""
    (action,) = run(pairs(paired(ev())), inc(r("dt-1", ev(status="cancelled"))))
    assert isinstance(action, Delete)
    assert action.target is Side.CALDAV


def test_absent_from_complete_listing_is_deleted() -> None:
    """A mapped href absent from a full CalDAV listing (with other items present) is deleted."""
    states = pairs(paired(ev()), paired(ev("u2"), dt="dt-2", href="u2.ics"))
    (action,) = run(states, caldav=full(r("u2.ics", ev("u2"), '"e1"')))
    assert isinstance(action, Delete)
    assert (action.target, action.target_id) == (Side.DINGTALK, "dt-1")


@pytest.mark.parametrize("gone", [Side.DINGTALK, Side.CALDAV])
def test_deleted_on_one_side_and_edited_on_the_other_the_edit_wins(gone: Side) -> None:
    """The edit wins: re-create on the deleted side, pair repointed."""
    edited = ev(summary="Edited")
    d = inc(deleted=("dt-1",)) if gone is Side.DINGTALK else inc(r("dt-1", edited))
    c = inc(deleted=("u1.ics",)) if gone is Side.CALDAV else inc(r("u1.ics", edited, '"e2"'))
    (action,) = run(pairs(paired(ev())), d, c)
    assert isinstance(action, Create)
    assert (action.target, action.uid, action.event.summary) == (gone, "u1", "Edited")
    ids = action.pair.ids()
    assert ids[gone] is None
    assert ids[gone.other] == ("dt-1" if gone is Side.CALDAV else "u1.ics")


def test_deleted_on_both_sides_forgets_the_pair() -> None:
    """Both sides deleted it: Forget, no write."""
    (action,) = run(pairs(paired(ev())), inc(deleted=("dt-1",)), inc(deleted=("u1.ics",)))
    assert isinstance(action, Forget)


def test_untranslatable_paired_item_is_skipped_never_deleted_nor_overwritten() -> None:
    """A paired item that cannot be translated is left alone, even when the other side changed."""
    plan = run(
        pairs(paired(ev())), inc(r("dt-1", ev(summary="x"))), full(r("u1.ics", None, error="bad"))
    )
    (action,) = plan
    assert isinstance(action, Skip)
    assert (action.ref, action.side, action.reason) == ("u1", Side.CALDAV, "untranslatable: bad")


def test_untranslatable_new_item_is_skipped_not_copied() -> None:
    """An unpaired untranslatable item is reported, not copied."""
    (action,) = run({}, caldav=inc(r("x.ics", None, error="no DTSTART")))
    assert isinstance(action, Skip)
    assert (action.ref, action.side) == ("x.ics", Side.CALDAV)


def test_unpaired_cancelled_item_is_ignored() -> None:
    """A tombstone of an event never paired plans nothing (no copy of a cancelled event)."""
    assert list(run({}, inc(r("dt-5", ev(status="cancelled"))))) == []


def test_two_items_with_one_uid_on_one_side_are_not_duplicated() -> None:
    """Two new CalDAV items sharing a UID: one is copied, the other skipped with a reason."""
    plan = run({}, caldav=inc(r("a.ics", ev("dup")), r("b.ics", ev("dup", summary="2"))))
    assert kinds(plan) == ["Skip", "Create"]
    skip = plan.actions[0]
    assert isinstance(skip, Skip)
    assert skip.ref == "b.ics"


def test_second_item_claiming_a_paired_uid_is_skipped() -> None:
    """A new href carrying the UID of a pair whose own href is still present is skipped."""
    plan = run(pairs(paired(ev())), caldav=full(r("u1.ics", ev(), '"e1"'), r("z.ics", ev())))
    (action,) = plan
    assert isinstance(action, Skip)
    assert action.ref == "z.ics"


def test_settle_remembers_what_a_side_holds_only_when_it_differs_from_the_base() -> None:
    """Echo suppression: the written event's fingerprint is stored; its content only if lossy."""
    template = paired(ev())
    exact = settle(template, Side.CALDAV, Written("new.ics", '"9"', ev()))
    assert (exact.caldav_href, exact.caldav_etag, exact.caldav_held) == ("new.ics", '"9"', None)
    folded = ev(summary="STANDUP")
    lossy = settle(template, Side.CALDAV, Written("new.ics", None, folded))
    assert (lossy.caldav_fp, lossy.caldav_held) == (folded.fingerprint(), folded)


def test_pair_missing_a_side_is_repaired_even_when_nothing_was_reported() -> None:
    """A stored pair without a CalDAV item gets one created from the agreed event."""
    p = dataclasses.replace(paired(ev()), caldav_href=None, caldav_fp=None, caldav_etag=None)
    (action,) = run(pairs(p))
    assert isinstance(action, Create)
    assert (action.target, action.event.summary, action.pair.dingtalk_id) == (
        Side.CALDAV,
        "Standup",
        "dt-1",
    )


def test_only_pairs_something_was_reported_about_are_decided() -> None:
    """Unmentioned pairs of an incremental listing produce no actions, however many there are."""
    many = pairs(*(paired(ev(f"u{i}"), dt=f"dt-{i}", href=f"u{i}.ics") for i in range(500)))
    plan = run(many, inc(r("dt-7", ev("u7", summary="changed"))))
    assert [a.uid for a in plan] == ["u7"]
