"""Hypothesis state machine: random edits on both sides and random reconcile interleavings.

Rules create, edit, delete, rename and rewrite items on either side, make cursors stale,
inject failing writes, run incremental or full reconciles with any conflict policy, and
lose the mapping store; servers may rewrite or drop fields they are sent. After every
reconcile that finished without failures (no edits happen during a run) the invariants
hold: both sides hold the same events (compared after both servers' rewrites), no
duplicates (pairs biject with the items of each side), a second reconcile writes nothing,
the writes of a reconcile are bounded by the edits made since the previous one, no edited
item is deleted (modify beats delete), when only one side was edited both sides end up
with its content, and a field edited on one side only ends up with that value on both.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from structlog.testing import capture_logs

from syncd.errors import EtagMismatch, SourceEmptied, SourceUnavailable, SyncdError
from syncd.model import Event, PairState, Side
from syncd.reconcile import Report
from syncd.sync import Policy
from tests.fakes import REF, SH, MemorySide, World, drop_description, ev, new_world

SIDES = st.sampled_from([Side.DINGTALK, Side.CALDAV])
TEXT = st.sampled_from(["a", "b", "a b", "a  b", " a", "b "])  # some fold to others
FIELD_NAMES = ("summary", "location", "description")
FIELDS = st.sampled_from(FIELD_NAMES)
Wanted = tuple[str, str, object]  # pair uid, field, value both sides must end up with
Kept = tuple[Side, str, str, object]  # side, pair uid, field, value that side must keep
POLICIES = st.sampled_from(["newest", "dingtalk", "caldav"])
ERRORS = st.sampled_from([SourceUnavailable("503"), EtagMismatch("412")])

# CI budget: 150 runs of up to 40 steps per machine (about 5 s each), derandomized so a
# failure reproduces exactly.
CI = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def collapse_spaces(event: Event) -> Event:
    """A CalDAV server that folds whitespace in titles (a lossy, idempotent rewrite)."""
    return dataclasses.replace(event, summary=" ".join(event.summary.split()) or "-")


def _same(event: Event) -> Event:
    return event


class SyncMachine(RuleBasedStateMachine):
    """Two in-memory calendars, the memory store, and random users and runs."""

    caldav_rewrite: Callable[[Event], Event] | None = None
    dingtalk_rewrite: Callable[[Event], Event] | None = None
    day = datetime(2025, 3, 3, tzinfo=SH)  # when created events happen

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.world: World = new_world()
        self.world.caldav.normalize = type(self).caldav_rewrite
        self.world.dingtalk.normalize = type(self).dingtalk_rewrite
        self.serial = 0
        self.ops = 0  # user operations since the last converged reconcile
        self.injected = False
        # The oracles compare with what each side held after the last converged reconcile.
        self.snap: dict[Side, dict[str, Event]] = {Side.DINGTALK: {}, Side.CALDAV: {}}

    def teardown(self) -> None:
        self.loop.close()

    # --- users ----------------------------------------------------------------------

    def _side(self, side: Side) -> MemorySide:
        return self.world.dingtalk if side is Side.DINGTALK else self.world.caldav

    @rule(side=SIDES, summary=TEXT, hour=st.integers(8, 10))
    def create(self, side: Side, summary: str, hour: int) -> None:
        self.serial += 1
        start = self.day.replace(hour=hour)
        event = ev(f"u{self.serial}", summary, start=start, end=start.replace(minute=30))
        self._side(side).user_create(event)
        self.ops += 1

    @precondition(lambda self: self.world.dingtalk.items or self.world.caldav.items)
    @rule(data=st.data(), side=SIDES, field=FIELDS, value=TEXT)
    def edit(self, data: st.DataObject, side: Side, field: str, value: str) -> None:
        target = self._side(side)
        if target.items:
            item_id = data.draw(st.sampled_from(sorted(target.items)))
            target.user_update(item_id, **{field: value})
            self.ops += 1

    @precondition(lambda self: self.world.dingtalk.items or self.world.caldav.items)
    @rule(data=st.data(), side=SIDES)
    def delete(self, data: st.DataObject, side: Side) -> None:
        target = self._side(side)
        if target.items:
            item_id = data.draw(st.sampled_from(sorted(target.items)))
            target.user_delete(item_id)
            self.ops += 1

    @precondition(lambda self: self.world.caldav.items)
    @rule(data=st.data(), rename=st.booleans())
    def rewrite_or_rename_on_caldav(self, data: st.DataObject, rename: bool) -> None:
        href = data.draw(st.sampled_from(sorted(self.world.caldav.items)))
        if rename:
            self.serial += 1
            self.world.caldav.user_move(href, f"moved-{self.serial}.ics")
            if href in self.snap[Side.CALDAV]:
                self.snap[Side.CALDAV][f"moved-{self.serial}.ics"] = self.snap[Side.CALDAV].pop(
                    href
                )
        else:
            self.world.caldav.user_touch(href)

    @rule(side=SIDES)
    def expire_cursors(self, side: Side) -> None:
        self._side(side).expire_cursors()

    @rule(side=SIDES, op=st.sampled_from(["create", "update", "delete"]), error=ERRORS)
    def fail_next_write(self, side: Side, op: str, error: SyncdError) -> None:
        self._side(side).fail(op, error)
        self.injected = True

    @precondition(lambda self: self.world.dingtalk.items and self.world.caldav.items)
    @rule(data=st.data(), deleted=SIDES, mid_run=st.sampled_from(["edit", "delete"]))
    def edit_vs_delete(self, data: st.DataObject, deleted: Side, mid_run: str) -> None:
        """One side deletes a synced event while the other edits it, and one of the two
        lands between a run's reads and its first write: the edit wins on both sides."""
        pairs = self.loop.run_until_complete(self.world.store.load_pairs(REF))
        live = sorted(
            uid
            for uid, p in pairs.items()
            if all(self._id(p, side) in self._side(side).items for side in Side)
        )
        if not live:
            return
        pair = pairs[data.draw(st.sampled_from(live))]
        self.serial += 1
        marker, edited = f"edited-{self.serial}", deleted.other

        def edit() -> None:
            self._side(edited).user_update(self._id(pair, edited), location=marker)

        def delete() -> None:
            self._side(deleted).user_delete(self._id(pair, deleted))

        first, later = (edit, delete) if mid_run == "delete" else (delete, edit)
        first()
        self.world.dingtalk.between.append(later)
        self.ops += 2
        self._run_confirmed(self._policy(), False)  # its writes may fail
        self.world.dingtalk.land()  # the run wrote nothing: the change lands now
        self.reconcile("newest", False)
        for side in Side:
            found = [e for e in self._side(side).events().values() if e.location == marker]
            assert len(found) == 1, (side, mid_run, found)

    # --- runs -----------------------------------------------------------------------

    def _policy(self, conflict: str = "newest") -> Policy:
        """No deletion limit; DingTalk keeps of a CalDAV event what its rewrite leaves."""
        return Policy(
            conflict=conflict,  # type: ignore[arg-type]
            max_deletions=10**6,
            dingtalk_keeps=type(self).dingtalk_rewrite or _same,
        )

    def _run(self, policy: Policy, full: bool) -> Report | None:
        before = self.world.writes()
        try:
            with capture_logs():  # keep the log renderer out of the time budget
                return self.loop.run_until_complete(self.world.sync(policy, full=full))
        except SourceEmptied:
            assert self.world.writes() == before  # refused before writing anything
            return None

    def _run_confirmed(self, policy: Policy, full: bool) -> Report:
        """Run; if every item is gone from one side (SourceEmptied), the operator confirms."""
        report = self._run(policy, full)
        if report is None:
            report = self._run(dataclasses.replace(policy, force_delete=True), full)
        assert report is not None
        return report

    def _run_until_applied(self, policy: Policy, full: bool) -> Report:
        """Run, then run again while injected faults fire (each fires once)."""
        report = self._run_confirmed(policy, full)
        for _ in range(8):
            if not report.errors:
                return report
            assert report.cursors_committed is False  # nothing unapplied is skipped over
            report = self._run_confirmed(policy, False)
        raise AssertionError(f"still failing: {report.errors}")

    @rule(conflict=POLICIES, full=st.booleans())
    def reconcile(self, conflict: str, full: bool) -> None:
        policy = self._policy(conflict=conflict)
        self.world.reset_counts()
        edited = {side: self._edited(side) for side in Side}
        deleted = {side: set(self.snap[side]) - set(self._side(side).items) for side in Side}
        touched = [s for s in Side if edited[s] or deleted[s]]
        truth = self._content(touched[0]) if len(touched) == 1 else None
        wanted, kept = self._field_oracles()
        self._run_until_applied(policy, full)
        changes = sum(len(edited[s]) + len(deleted[s]) for s in Side)  # renames are free
        writes = self.world.writes()
        assert writes <= (4 if self.injected else 2) * changes, (writes, changes)
        self.ops = 0
        self.injected = bool(
            self.world.dingtalk.pending_failures or self.world.caldav.pending_failures
        )
        self._assert_converged()
        self._assert_edits_kept(edited, truth)
        self._assert_fields_kept(wanted, kept)
        self.snap = {side: self._side(side).events() for side in Side}
        self.world.reset_counts()
        again = self._run(policy, False)
        assert again is not None
        assert (self.world.writes(), again.counts.conflicts) == (0, 0), again.plan.describe()

    def _norm(self, event: Event) -> Event:
        """An event as both servers would leave it (their rewrites commute); the oracles
        compare events in this form."""
        cls = type(self)
        return (cls.dingtalk_rewrite or _same)((cls.caldav_rewrite or _same)(event))

    def _content(self, side: Side) -> Counter[str]:
        return Counter(self._norm(e).fingerprint() for e in self._side(side).events().values())

    def _edited(self, side: Side) -> set[str]:
        """Items created or changed on ``side`` since the last converged reconcile."""
        old = self.snap[side]
        return {
            item_id
            for item_id, event in self._side(side).events().items()
            if item_id not in old or old[item_id].fingerprint() != event.fingerprint()
        }

    def _assert_edits_kept(self, edited: dict[Side, set[str]], truth: Counter[str] | None) -> None:
        """Modify beats delete; and what only one side's user changed is what both now hold."""
        for side in Side:
            lost = edited[side] - set(self._side(side).items)
            assert not lost, f"edited items deleted on {side}: {lost}"
        if truth is not None:
            assert self._content(Side.DINGTALK) == truth

    def _value(self, side: Side, item_id: str, field: str) -> object:
        return getattr(self._norm(self._side(side).events()[item_id]), field)

    def _field_oracles(self) -> tuple[list[Wanted], list[Kept]]:
        """For live pairs: fields the user edited on one side only, with the value both
        sides must end up with; and per side, fields edited on neither, which must stay."""
        pairs = self.loop.run_until_complete(self.world.store.load_pairs(REF))
        d_items, c_items = self.world.dingtalk.items, self.world.caldav.items
        wanted: list[Wanted] = []
        kept: list[Kept] = []
        for pair in pairs.values():
            ids = {side: self._id(pair, side) for side in Side}
            if ids[Side.DINGTALK] not in d_items or ids[Side.CALDAV] not in c_items:
                continue
            edited = {side: self._fields_edited(side, ids[side]) for side in Side}
            for side in Side:
                for field in edited[side] - edited[side.other]:
                    wanted.append((pair.uid, field, self._value(side, ids[side], field)))
                for field in set(FIELD_NAMES) - edited[side] - edited[side.other]:
                    raw = getattr(self._side(side).events()[ids[side]], field)
                    kept.append((side, pair.uid, field, raw))
        return wanted, kept

    def _fields_edited(self, side: Side, item_id: str) -> set[str]:
        old, now = self.snap[side].get(item_id), self._side(side).events()[item_id]
        if old is None:
            return set()
        return {f for f in FIELD_NAMES if getattr(old, f) != getattr(now, f)}

    def _assert_fields_kept(self, wanted: list[Wanted], kept: list[Kept]) -> None:
        """A field edited on one side only ends up with that value on both sides; a field
        edited on neither side keeps, on each side, what that side held."""
        pairs = self.loop.run_until_complete(self.world.store.load_pairs(REF))
        for uid, field, value in wanted:
            for side in Side:
                assert self._value(side, self._id(pairs[uid], side), field) == value, (uid, field)
        for side, uid, field, raw in kept:
            event = self._side(side).events()[self._id(pairs[uid], side)]
            assert getattr(event, field) == raw, (side, uid, field)

    @staticmethod
    def _id(pair: PairState, side: Side) -> str:
        return (pair.dingtalk_id if side is Side.DINGTALK else pair.caldav_href) or ""

    def _assert_converged(self) -> None:
        d, c = self.world.dingtalk.events(), self.world.caldav.events()
        assert self._content(Side.DINGTALK) == self._content(Side.CALDAV)
        pairs = self.loop.run_until_complete(self.world.store.load_pairs(REF))
        assert sorted(p.dingtalk_id or "" for p in pairs.values()) == sorted(d)
        assert sorted(p.caldav_href or "" for p in pairs.values()) == sorted(c)

    @invariant()
    def sides_never_hold_more_items_than_were_created(self) -> None:
        total = len(self.world.dingtalk.items) + len(self.world.caldav.items)
        assert total <= 2 * self.serial


class LostStoreMachine(SyncMachine):
    """Exact servers, plus losing the mapping store: a full run re-pairs without writing."""

    @rule()
    def lose_store_and_recover(self) -> None:
        self.reconcile("newest", full=False)
        self.loop.run_until_complete(self.world.store.wipe(REF))
        self.world.reset_counts()
        report = self._run(self._policy(), False)
        assert report is not None
        assert (self.world.writes(), report.counts.conflicts) == (0, 0), report.plan.describe()
        self._assert_converged()


class LossyMachine(SyncMachine):
    """CalDAV folds titles, DingTalk drops descriptions: no echo, no edit lost to a rewrite."""

    caldav_rewrite = staticmethod(collapse_spaces)
    dingtalk_rewrite = staticmethod(drop_description)


class LossyLostStoreMachine(LostStoreMachine):
    """DingTalk drops descriptions, and the store is lost: copies of CalDAV events with a
    description re-pair exactly by what DingTalk keeps of them, without writes."""

    dingtalk_rewrite = staticmethod(drop_description)

    @initialize()
    def caldav_event_with_a_description(self) -> None:
        """Every run starts with what DingTalk cannot hold whole: a described CalDAV event."""
        self.serial += 1
        start = self.day.replace(hour=9)
        event = ev(f"u{self.serial}", "notes", description="agenda", start=start,
                   end=start.replace(minute=30))  # fmt: skip
        self.world.caldav.user_create(event)
        self.ops += 1


TestLostStore = LostStoreMachine.TestCase
TestLostStore.settings = CI
TestLostStore.__doc__ = "Random edits and runs converge; a lost store is recovered without writes."
TestLossyLostStore = LossyLostStoreMachine.TestCase
TestLossyLostStore.settings = CI
TestLossyLostStore.__doc__ = "A lost store is recovered without writes when DingTalk drops fields."
TestLossy = LossyMachine.TestCase
TestLossy.settings = CI
TestLossy.__doc__ = "Random edits and runs converge against servers that rewrite or drop fields."
