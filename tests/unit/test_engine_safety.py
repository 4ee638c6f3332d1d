"""Planner safety and identity recovery: emptied sources, held deletions, lost store, reclaim."""

from __future__ import annotations

import pytest

from syncd.errors import SourceEmptied
from syncd.model import PairState, Side
from syncd.sync import Conflict, Delete, Policy, Record, Update
from syncd.sync.plan import Plan
from tests.fakes import ev, full, inc, kinds, paired, pairs, r, run


def _many(n: int) -> dict[str, PairState]:
    return pairs(*(paired(ev(f"u{i}"), dt=f"dt-{i}", href=f"u{i}.ics") for i in range(n)))


def test_empty_complete_listing_while_pairs_exist_raises_source_emptied() -> None:
    """A full DingTalk listing with 0 events while 3 are mapped is refused."""
    with pytest.raises(SourceEmptied, match="dingtalk listed no events while 3 are mapped"):
        run(_many(3), full())


def test_force_delete_lets_an_emptied_source_delete_everything() -> None:
    """An empty listing, confirmed (force_delete): the pairs are deleted on the other side."""
    plan = run(_many(3), full(), policy=Policy(force_delete=True))
    assert kinds(plan) == ["Delete"] * 3
    assert {a.target for a in plan if isinstance(a, Delete)} == {Side.CALDAV}


def test_empty_incremental_listing_is_not_a_deletion() -> None:
    """An empty incremental answer means 'nothing changed', never 'all deleted'."""
    assert list(run(_many(3), inc(), inc())) == []


def test_empty_complete_listing_without_pairs_is_fine() -> None:
    """A first sync of an empty calendar is not an emptied source."""
    assert list(run({}, full(), full())) == []


def test_deletions_above_both_thresholds_are_held_and_the_rest_still_runs() -> None:
    """30 of 40 deleted (>20 and >50%): held with a warning; other actions stay."""
    states = _many(40)
    deleted = tuple(f"dt-{i}" for i in range(30))
    plan = run(states, inc(r("dt-35", ev("u35", summary="edited")), deleted=deleted))
    assert kinds(plan) == ["Update"]
    assert len(plan.held_deletions) == 30
    assert {d.target for d in plan.held_deletions} == {Side.CALDAV}
    (warning,) = plan.warnings
    assert "30 deletions on caldav of 40 pairs exceed the threshold" in warning
    assert plan.counts().deleted == 0


@pytest.mark.parametrize(
    ("total", "deleted"),
    [(40, 15), (100, 30)],  # under the count, or under the ratio: executed
)
def test_deletions_under_either_threshold_are_executed(total: int, deleted: int) -> None:
    """Deletions are held only when above both the count and the ratio."""
    ids = tuple(f"dt-{i}" for i in range(deleted))
    plan = run(_many(total), inc(deleted=ids))
    assert (len(plan.writes), plan.held_deletions) == (deleted, ())


def test_force_delete_releases_held_deletions() -> None:
    """With force_delete, mass deletions are executed."""
    ids = tuple(f"dt-{i}" for i in range(30))
    plan = run(_many(40), inc(deleted=ids), policy=Policy(force_delete=True))
    assert (len(plan.writes), plan.held_deletions) == (30, ())


def test_lost_store_repairs_dingtalk_born_events_by_uid() -> None:
    """No pairs, both sides full: items sharing a UID pair up, nothing is written."""
    e = ev("dingtalk-dt-1")
    plan = run({}, full(r("dt-1", e)), full(r("x.ics", e, '"9"')))
    (action,) = plan
    assert isinstance(action, Record)
    p = action.pair
    assert (p.uid, p.dingtalk_id, p.caldav_href, p.caldav_etag) == (e.uid, "dt-1", "x.ics", '"9"')
    assert p.base == e
    assert p.origin is Side.DINGTALK


def test_lost_store_reclaims_caldav_born_copies_by_fingerprint() -> None:
    """Scenarios 9/10: a DingTalk copy cannot carry the UID; equal content pairs it instead."""
    c = ev("cal-uid", summary="Review")
    d = ev("dingtalk-dt-4", summary="Review")
    other = ev("cal-other", summary="Other")
    plan = run({}, full(r("dt-4", d)), full(r("cal-uid.ics", c), r("o.ics", other)))
    assert kinds(plan) == ["Record", "Create"]
    record = plan.actions[0]
    assert isinstance(record, Record)
    assert (record.pair.uid, record.pair.dingtalk_id, record.pair.origin) == (
        "cal-uid",
        "dt-4",
        Side.CALDAV,
    )


def test_identical_copies_are_reclaimed_one_to_one() -> None:
    """Two identical DingTalk events and one CalDAV copy: one reclaimed, one copied (no loss)."""
    d1, d2 = ev("dingtalk-a"), ev("dingtalk-b")
    plan = run({}, full(r("a", d1), r("b", d2)), full(r("c.ics", ev("c"))))
    assert kinds(plan) == ["Record", "Create"]


def test_same_uid_different_content_becomes_one_pair_and_a_conflict() -> None:
    """Unpaired items with one UID and different content: a pair plus a conflict."""
    d = ev("dingtalk-dt-1", summary="D")
    c = ev("dingtalk-dt-1", summary="C")
    plan = run({}, full(r("dt-1", d)), full(r("x.ics", c)), Policy(conflict="caldav"))
    conflict, update = plan.actions
    assert isinstance(conflict, Conflict)
    assert isinstance(update, Update)
    assert (conflict.record.fields, conflict.record.base) == (("summary",), None)
    assert (update.target, update.event.summary) == (Side.DINGTALK, "C")
    assert (update.pair.dingtalk_id, update.pair.caldav_href) == ("dt-1", "x.ics")


def test_first_sync_into_a_calendar_holding_matching_uids_reclaims_them() -> None:
    """Existing CalDAV copies of DingTalk events are reclaimed, not duplicated."""
    events = [ev(f"dingtalk-dt-{i}", summary=f"E{i}") for i in range(5)]
    d = full(*(r(f"dt-{i}", e) for i, e in enumerate(events)))
    c = full(*(r(f"{e.uid}.ics", e) for e in events))
    plan = run({}, d, c)
    assert kinds(plan) == ["Record"] * 5
    assert plan.writes == ()


def test_plan_counts_and_describes_every_action() -> None:
    """Counts and describe() cover creates, updates, deletes, conflicts, skips and held ones."""
    states = pairs(paired(ev()), paired(ev("u2"), dt="dt-2", href="u2.ics"))
    plan = run(
        states,
        inc(r("dt-1", ev(summary="a")), r("dt-9", ev("dingtalk-dt-9")), deleted=("dt-2",)),
        inc(r("u1.ics", ev(summary="b"), '"e2"'), r("bad.ics", None, error="broken")),
    )
    counts = plan.counts()
    assert (counts.created, counts.updated, counts.deleted, counts.conflicts, counts.skipped) == (
        1,
        1,
        1,
        1,
        1,
    )
    lines = plan.describe()
    assert len(lines) == len(plan)
    assert any(line.startswith("conflict u1 [summary] -> dingtalk wins") for line in lines)
    assert isinstance(plan, Plan)
    assert plan.per_side()[Side.CALDAV].deleted == 1


def test_plan_is_deterministic() -> None:
    """The same inputs give the same plan, whatever the listing order."""
    items = [r(f"dt-{i}", ev(f"dingtalk-dt-{i}", summary=str(i))) for i in range(6)]
    first = run({}, inc(*items))
    second = run({}, inc(*reversed(items)))
    assert first == second
