"""Hypothesis: random edits on both sides of a shaped binding, random runs between them.

Users create, retitle, move, describe, answer and delete events on either side, on
origins and on copies alike; reconciles run incrementally or in full. After the runs settle
(at most three, then one that writes nothing), for every shaped binding:

- every copy shows what syncd's copy of its origin shows (``norm(copy) == out(origin)``):
  a busy copy holds the origin's time and no detail, a prefixed copy the origin's title
  (its user may have removed the mark); a copy no user touched is exactly ``out(origin)``;
- no origin ever takes a busy copy's title;
- every pair's origin passes the filter; an event without a pair is one that does not,
  and was never copied.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from syncd.model import Attendee, Event, PairState, Side
from syncd.sync import Policy, Skip
from syncd.sync.plan import pair_id
from syncd.sync.shaping import Filter, Shaping
from tests.fakes import REF, SH, MemorySide, World, new_world

ALICE = "alice@acme.example"
PREFIX = "[DT] "
SHAPINGS = {
    "busy": Shaping(mirror_busy=True),
    "prefix": Shaping(summary_prefix=PREFIX),
    "busy+prefix+declined": Shaping(
        mirror_busy=True,
        summary_prefix=PREFIX,
        filter=Filter(skip_declined=True),
        bound_email=ALICE,
    ),
    "prefix+exclude+declined": Shaping(
        summary_prefix=PREFIX,
        filter=Filter.build(skip_declined=True, exclude_summary=["^private"]),
        bound_email=ALICE,
    ),
}
DIRECTIONS = {"busy": "to_caldav", "prefix+exclude+declined": "to_dingtalk"}
SIDES = st.sampled_from([Side.DINGTALK, Side.CALDAV])
TITLES = st.sampled_from(["a", "b", f"{PREFIX}a", f"{PREFIX}{PREFIX}b", "private c", "Busy x"])
ANSWERS = st.sampled_from(["accepted", "declined", "needs-action"])
DAY = datetime(2025, 3, 3, 9, tzinfo=SH)

CI = settings(
    max_examples=200,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class ShapedMachine:
    """Two in-memory calendars under one shaped binding, and random users and runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.world: World = new_world()
        self.policy = Policy()
        self.serial = 0
        self.touched: set[tuple[Side, str]] = set()  # items users created or edited

    def teardown(self) -> None:
        self.loop.close()

    def choose(self, kind: str) -> None:
        """``kind``: a shaping, two-way, or ``<shaping>/oneway`` in its DIRECTIONS one."""
        shaping, _, oneway = kind.partition("/")
        direction = DIRECTIONS[shaping] if oneway else "both"
        # force_delete: a side the users emptied is theirs to empty (no held deletions)
        self.policy = Policy(direction, shaping=SHAPINGS[shaping], force_delete=True)  # type: ignore[arg-type]

    def _side(self, side: Side) -> MemorySide:
        return self.world.dingtalk if side is Side.DINGTALK else self.world.caldav

    def _pick(self, side: Side, index: int) -> str | None:
        """An item of ``side`` a user is about to edit (noted as touched)."""
        ids = sorted(self._side(side).events())
        if not ids:
            return None
        self.touched.add((side, ids[index % len(ids)]))
        return ids[index % len(ids)]

    # --- users ---------------------------------------------------------------------------

    def create(self, side: Side, title: str, hour: int, answer: str) -> None:
        self.serial += 1
        start = DAY + timedelta(hours=hour)
        event = Event(
            uid=f"e{self.serial}",
            summary=title,
            start=start,
            end=start + timedelta(minutes=30),
            description="secret",
            attendees=(Attendee(ALICE, partstat=answer),),  # type: ignore[arg-type]
        )
        self.touched.add((side, self._side(side).user_create(event)))

    def retitle(self, side: Side, index: int, title: str) -> None:
        if (item := self._pick(side, index)) is not None:
            self._side(side).user_update(item, summary=title)

    def move(self, side: Side, index: int, hours: int) -> None:
        if (item := self._pick(side, index)) is not None:
            event = self._side(side).events()[item]
            assert isinstance(event.start, datetime)
            assert isinstance(event.end, datetime)
            delta = timedelta(hours=hours)
            self._side(side).user_put(
                item, dataclasses.replace(event, start=event.start + delta, end=event.end + delta)
            )

    def describe(self, side: Side, index: int, text: str) -> None:
        if (item := self._pick(side, index)) is not None:
            self._side(side).user_update(item, description=text)

    def answer(self, side: Side, index: int, answer: str) -> None:
        item = self._pick(side, index)
        if item is not None and self._side(side).events()[item].attendees:
            people = (Attendee(ALICE, partstat=answer),)  # type: ignore[arg-type]
            self._side(side).user_update(item, attendees=people)

    def delete(self, side: Side, index: int) -> None:
        if (item := self._pick(side, index)) is not None:
            self._side(side).user_delete(item)

    # --- runs and what must hold after them ------------------------------------------------

    def sync(self, full: bool) -> None:
        if not self.serial:
            return
        with capture_logs():
            plans = []
            for run in (full, True, True, True):  # a full run may reshape a copy once
                self.world.reset_counts()
                report = self.loop.run_until_complete(self.world.sync(self.policy, full=run))
                plans.append(report.plan.describe())
                if run and all(isinstance(a, Skip) for a in report.plan):
                    break  # a full run found nothing to do
            self.world.reset_counts()
            for run in (True, False):
                report = self.loop.run_until_complete(self.world.sync(self.policy, full=run))
                plans.append(report.plan.describe())
        assert self.world.writes() == 0, f"a settled binding wrote again: {plans}"
        pairs = self.loop.run_until_complete(self.world.store.load_pairs(REF))
        for pair in pairs.values():
            self._check_pair(pair)
        self._check_unpaired(pairs)

    def _event(self, pair: PairState, side: Side) -> Event:
        item = pair_id(pair, side)
        assert item is not None, f"pair {pair.uid} lacks its {side} item"
        return self._side(side).events()[item]

    def _check_pair(self, pair: PairState) -> None:
        shaping = self.policy.shaping
        origin, copy = self._event(pair, pair.origin), self._event(pair, pair.origin.other)
        assert shaping.rejection(origin) is None, "a pair's origin does not pass the filter"
        said, meant = shaping.norm(copy), shaping.out(origin)
        assert said.fingerprint() == meant.fingerprint(), (origin, copy)
        copy_id = pair_id(pair, pair.origin.other)
        if (pair.origin.other, copy_id) not in self.touched:  # syncd's own copy, as made
            assert copy.fingerprint() == meant.fingerprint(), (origin, copy)
        if shaping.mirror_busy:
            assert (copy.description, copy.attendees) == ("", ())
            assert origin.summary != shaping.busy_title

    def _check_unpaired(self, pairs: dict[str, PairState]) -> None:
        for side in Side:
            paired = {pair_id(p, side) for p in pairs.values()}
            for item, event in self._side(side).events().items():
                if item not in paired and self.policy.writes_to(side.other):
                    why = self.policy.shaping.rejection(event)
                    assert why is not None, f"{side} {item} is neither paired nor filtered"


USER_OPS = st.one_of(
    st.tuples(st.just("create"), SIDES, TITLES, st.integers(0, 5), ANSWERS),
    st.tuples(st.just("retitle"), SIDES, st.integers(0, 9), TITLES),
    st.tuples(st.just("move"), SIDES, st.integers(0, 9), st.integers(1, 3)),
    st.tuples(st.just("describe"), SIDES, st.integers(0, 9), st.sampled_from(["x", "y", ""])),
    st.tuples(st.just("answer"), SIDES, st.integers(0, 9), ANSWERS),
    st.tuples(st.just("delete"), SIDES, st.integers(0, 9)),
)
# Rounds of a few user operations, each followed by a run (incremental or full).
ROUNDS = st.lists(
    st.tuples(st.lists(USER_OPS, min_size=1, max_size=4), st.booleans()), min_size=2, max_size=10
)


KINDS = sorted(SHAPINGS) + [f"{kind}/oneway" for kind in sorted(DIRECTIONS)]


@CI
@given(st.sampled_from(KINDS), ROUNDS)
def test_random_edits_keep_copies_shaped(
    kind: str, rounds: list[tuple[list[tuple[Any, ...]], bool]]
) -> None:
    """Rounds of user edits on both sides, each followed by a run: the invariants of the
    module docstring hold after every run."""
    machine = ShapedMachine()
    try:
        machine.choose(kind)
        machine.create(Side.DINGTALK, "a", 0, "accepted")
        machine.create(Side.CALDAV, "b", 1, "accepted")
        for operations, full in rounds:
            for name, *args in operations:
                getattr(machine, name)(*args)
            machine.sync(full)
    finally:
        machine.teardown()
