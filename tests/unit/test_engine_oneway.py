"""One-way bindings: the source wins, the mirror's edits and deletions are reverted."""

from __future__ import annotations

import pytest

from syncd.model import Side
from syncd.sync import Create, Delete, Forget, Policy, Skip, Update
from tests.fakes import ev, inc, kinds, paired, pairs, r, run

TO_CALDAV = Policy(direction="to_caldav")
TO_DINGTALK = Policy(direction="to_dingtalk")


def test_policy_says_which_sides_are_written() -> None:
    """writes_to and source follow the direction."""
    assert (TO_CALDAV.writes_to(Side.CALDAV), TO_CALDAV.writes_to(Side.DINGTALK)) == (True, False)
    assert (TO_DINGTALK.source, TO_CALDAV.source, Policy().source) == (
        Side.CALDAV,
        Side.DINGTALK,
        None,
    )


def test_source_edit_is_copied_to_the_mirror() -> None:
    """to_caldav: a DingTalk edit updates CalDAV as in a two-way binding."""
    (action,) = run(pairs(paired(ev())), inc(r("dt-1", ev(summary="new"))), policy=TO_CALDAV)
    assert isinstance(action, Update)
    assert action.target is Side.CALDAV


def test_mirror_edit_is_reverted_to_the_source_version() -> None:
    """to_caldav: a CalDAV edit is overwritten with the agreed (DingTalk) version."""
    plan = run(
        pairs(paired(ev())), caldav=inc(r("u1.ics", ev(summary="local"), '"e2"')), policy=TO_CALDAV
    )
    (action,) = plan
    assert isinstance(action, Update)
    assert (action.target, action.event.summary, action.etag) == (Side.CALDAV, "Standup", '"e2"')
    assert action.reason == "revert edit of one-way mirror"


def test_mirror_deletion_is_restored() -> None:
    """to_caldav: a CalDAV deletion re-creates the copy from the source."""
    (action,) = run(pairs(paired(ev())), caldav=inc(deleted=("u1.ics",)), policy=TO_CALDAV)
    assert isinstance(action, Create)
    assert (action.target, action.event.summary) == (Side.CALDAV, "Standup")


def test_source_deletion_deletes_the_mirror_copy() -> None:
    """to_caldav: a DingTalk deletion deletes the CalDAV copy."""
    (action,) = run(pairs(paired(ev())), inc(deleted=("dt-1",)), policy=TO_CALDAV)
    assert isinstance(action, Delete)
    assert action.target is Side.CALDAV


def test_source_deleted_while_mirror_edited_lets_the_copy_go() -> None:
    """to_caldav: deleted on the source, edited on the mirror: the pair is forgotten, copy kept."""
    plan = run(
        pairs(paired(ev())),
        inc(deleted=("dt-1",)),
        inc(r("u1.ics", ev(summary="mine"), '"e2"')),
        TO_CALDAV,
    )
    (action,) = plan
    assert isinstance(action, Forget)
    assert action.reason == "deleted on dingtalk, edited copy on caldav kept"


def test_both_edited_source_wins_without_a_conflict() -> None:
    """to_dingtalk: both sides edited: CalDAV's version overwrites DingTalk, nothing recorded."""
    plan = run(
        pairs(paired(ev())),
        inc(r("dt-1", ev(summary="dt"))),
        inc(r("u1.ics", ev(summary="cal"), '"e2"')),
        TO_DINGTALK,
    )
    assert kinds(plan) == ["Update"]
    (action,) = plan
    assert isinstance(action, Update)
    assert (action.target, action.event.summary) == (Side.DINGTALK, "cal")


@pytest.mark.parametrize(
    ("policy", "side"), [(TO_CALDAV, Side.CALDAV), (TO_DINGTALK, Side.DINGTALK)]
)
def test_items_created_on_the_mirror_are_left_there(policy: Policy, side: Side) -> None:
    """Items the user creates on the mirror side are skipped, never copied nor deleted."""
    item = r("x.ics", ev("x")) if side is Side.CALDAV else r("dt-3", ev("dingtalk-dt-3"))
    listing = inc(item)
    plan = run(
        {},
        listing if side is Side.DINGTALK else inc(),
        listing if side is Side.CALDAV else inc(),
        policy,
    )
    (action,) = plan
    assert isinstance(action, Skip)
    assert action.side is side
    assert action.reason == f"one-way binding: items created on {side} stay there"


def test_new_source_items_are_copied_to_the_mirror() -> None:
    """to_dingtalk (e.g. an ICS feed or CalDAV source): new CalDAV items are created in DingTalk."""
    (action,) = run({}, caldav=inc(r("n.ics", ev("n"))), policy=TO_DINGTALK)
    assert isinstance(action, Create)
    assert action.target is Side.DINGTALK
