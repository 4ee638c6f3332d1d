"""The planner with a binding's shaping: busy mirrors, filters and the summary prefix.

Table tests of single decisions, then runs of the real reconciler over the in-memory sides
(tests/fakes.py) counting the writes each edit causes.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest

from syncd.model import Attendee, Event, PairState, Side
from syncd.sync import Create, Delete, Forget, Policy, Record, Skip, Update
from syncd.sync.shaping import Filter, Shaping, busy_projection
from tests.fakes import World, ev, full, inc, new_world, paired, pairs, r, run

ALICE = "alice@acme.example"
BUSY = Policy(shaping=Shaping(mirror_busy=True))
BUSY_TO_CALDAV = Policy(direction="to_caldav", shaping=Shaping(mirror_busy=True))
DECLINED = Policy(shaping=Shaping(filter=Filter(skip_declined=True), bound_email=ALICE))
PREFIX = Policy(shaping=Shaping(summary_prefix="[DT] "))


def busy_pair() -> PairState:
    """A DingTalk-born pair whose CalDAV copy is the busy projection."""
    source = ev(description="secret", location="Room 1")
    copy = busy_projection(source)
    return dataclasses.replace(
        paired(source, caldav_event=copy), caldav_held=copy, origin=Side.DINGTALK
    )


def declined(event: Event | None = None) -> Event:
    """``event`` with Alice's answer: declined."""
    return dataclasses.replace(event or ev(), attendees=(Attendee(ALICE, partstat="declined"),))


def shifted(event: Event, hours: int, **changes: str) -> Event:
    """``event`` (timed) moved by ``hours``, with other ``changes``."""
    assert isinstance(event.start, datetime)
    assert isinstance(event.end, datetime)
    delta = timedelta(hours=hours)
    moved = dataclasses.replace(event, start=event.start + delta, end=event.end + delta)
    return dataclasses.replace(moved, **changes)  # type: ignore[arg-type]


# --- decisions ---------------------------------------------------------------------------


def test_new_event_is_copied_as_its_busy_projection() -> None:
    """A new DingTalk event becomes a CalDAV copy holding only time, titled Busy."""
    source = ev("dingtalk-x", description="secret", location="HQ")
    (action,) = run({}, inc(r("dt-9", source)), policy=BUSY)
    assert isinstance(action, Create)
    assert action.event == busy_projection(source)
    assert action.pair.base == source  # the pair remembers the real event


def test_title_change_on_the_source_of_a_busy_copy_writes_nothing() -> None:
    """Title/description edits are invisible in a busy copy: recorded, not written."""
    p = busy_pair()
    assert p.base is not None
    edited = dataclasses.replace(p.base, summary="Renamed", description="more secret")
    (action,) = run(pairs(p), inc(r("dt-1", edited)), policy=BUSY)
    assert isinstance(action, Record)
    assert action.pair.base == edited


@pytest.mark.parametrize("policy", [BUSY, BUSY_TO_CALDAV])
def test_time_change_on_the_source_updates_the_busy_copy(policy: Policy) -> None:
    """A moved source moves its busy copy (only the time fields are sent)."""
    p = busy_pair()
    assert p.base is not None
    later = shifted(p.base, 1)
    (action,) = run(pairs(p), inc(r("dt-1", later)), policy=policy)
    assert isinstance(action, Update)
    assert (action.target, action.fields) == (Side.CALDAV, ("start", "end"))
    assert action.event == busy_projection(later)


def test_time_edit_of_the_busy_copy_moves_the_source_and_keeps_its_title() -> None:
    """Two-way busy mirror: the copy's new time comes back; its "Busy" title never does."""
    p = busy_pair()
    assert p.base is not None
    copy = busy_projection(p.base)
    moved = shifted(copy, 2, summary="my note")
    (action,) = run(pairs(p), caldav=inc(r("u1.ics", moved, '"e2"')), policy=BUSY)
    assert isinstance(action, Update)
    assert (action.target, action.fields) == (Side.DINGTALK, ("start", "end"))
    assert (action.event.summary, action.event.description) == ("Standup", "secret")
    assert action.event.start == moved.start


def test_one_way_busy_mirror_reverts_a_title_edit_of_the_copy() -> None:
    """to_caldav: the mirror copy's title edit is reverted to busy_title."""
    p = busy_pair()
    assert p.base is not None
    edited = dataclasses.replace(busy_projection(p.base), summary="peek")
    (action,) = run(pairs(p), caldav=inc(r("u1.ics", edited, '"e2"')), policy=BUSY_TO_CALDAV)
    assert isinstance(action, Update)
    assert (action.target, action.event.summary) == (Side.CALDAV, "Busy")


def test_filtered_new_event_stays_on_its_side() -> None:
    """A declined new event is skipped with its reason, never copied."""
    (action,) = run({}, inc(r("dt-9", declined(ev("dingtalk-x")))), policy=DECLINED)
    assert isinstance(action, Skip)
    assert (action.side, action.reason) == (Side.DINGTALK, "filtered: declined by the bound user")


def test_event_that_stops_passing_removes_only_the_copy() -> None:
    """Declined after it was copied: the CalDAV copy is deleted (reason filtered), the
    DingTalk event is left alone."""
    p = paired(ev())
    (action,) = run(pairs(p), inc(r("dt-1", declined())), policy=DECLINED)
    assert isinstance(action, Delete)
    assert (action.target, action.target_id, action.etag) == (Side.CALDAV, "u1.ics", '"e1"')
    assert action.filtered
    assert action.reason == "filtered: declined by the bound user"


def test_caldav_born_event_that_stops_passing_removes_its_dingtalk_copy() -> None:
    """The filter reads the origin's version, whichever side it lives on."""
    p = dataclasses.replace(paired(ev("cal-1"), href="cal-1.ics"), origin=Side.CALDAV)
    rules = Policy(shaping=Shaping(filter=Filter.build(exclude_summary=["(?i)^private:"])))
    edited = ev("cal-1", summary="Private: dentist")
    (action,) = run(pairs(p), caldav=inc(r("cal-1.ics", edited, '"e2"')), policy=rules)
    assert isinstance(action, Delete)
    assert (action.target, action.reason) == (
        Side.DINGTALK,
        "filtered: summary matches '(?i)^private:'",
    )


def test_filtered_pair_whose_copy_is_gone_is_forgotten() -> None:
    """Nothing left to delete: the pair is dropped, nothing written."""
    p = paired(ev())
    (action,) = run(pairs(p), inc(r("dt-1", declined())), inc(deleted=("u1.ics",)), policy=DECLINED)
    assert isinstance(action, Forget)


def test_filter_never_deletes_the_origin() -> None:
    """A copy-side item that does not pass is not the filter's business (only origins are)."""
    p = paired(ev())
    rules = Policy(shaping=Shaping(filter=Filter(skip_free=True)))
    copy = ev(free_busy="free")
    actions = list(run(pairs(p), caldav=inc(r("u1.ics", copy, '"e2"')), policy=rules))
    assert not any(isinstance(a, Delete) and a.target is Side.DINGTALK for a in actions)


def test_prefix_marks_the_copy_and_is_removed_on_the_way_back() -> None:
    """The CalDAV copy is "[DT] Title"; "[DT] New" in CalDAV makes DingTalk "New"."""
    (create,) = run({}, inc(r("dt-9", ev("dingtalk-x", summary="Title"))), policy=PREFIX)
    assert isinstance(create, Create)
    assert create.event.summary == "[DT] Title"
    p = dataclasses.replace(
        paired(ev(summary="Title"), caldav_event=ev(summary="[DT] Title")),
        caldav_held=ev(summary="[DT] Title"),
    )
    (action,) = run(
        pairs(p), caldav=inc(r("u1.ics", ev(summary="[DT] New"), '"e2"')), policy=PREFIX
    )
    assert isinstance(action, Update)
    assert (action.target, action.event.summary) == (Side.DINGTALK, "New")


def test_caldav_copy_without_its_prefix_is_not_rewritten() -> None:
    """The user removed the mark: DingTalk gets what they typed; CalDAV is left as typed."""
    p = dataclasses.replace(
        paired(ev(summary="Title"), caldav_event=ev(summary="[DT] Title")),
        caldav_held=ev(summary="[DT] Title"),
    )
    (action,) = run(pairs(p), caldav=inc(r("u1.ics", ev(summary="Mine"), '"e2"')), policy=PREFIX)
    assert isinstance(action, Update)
    assert (action.target, action.event.summary) == (Side.DINGTALK, "Mine")


# --- runs of the reconciler --------------------------------------------------------------


@pytest.fixture
def world() -> World:
    """Empty DingTalk-like and CalDAV-like sides and an empty store."""
    return new_world()


async def test_busy_mirror_writes_per_edit(world: World) -> None:
    """Busy mirror, two-way: title edit 0 writes, time edit 1, copy's time edit 1 back."""
    dt = world.dingtalk.user_create(ev("x", description="secret"))
    await world.sync(BUSY)
    (copy,) = world.caldav.events().values()
    assert (copy.summary, copy.description) == ("Busy", "")
    world.reset_counts()
    world.dingtalk.user_update(dt, summary="Board meeting", description="layoffs")
    await world.sync(BUSY)
    assert world.writes() == 0
    world.dingtalk.user_put(dt, shifted(world.dingtalk.events()[dt], 1))
    await world.sync(BUSY)
    assert (world.caldav.calls["update"], world.dingtalk.writes) == (1, 0)
    world.reset_counts()
    (href,) = world.caldav.items
    world.caldav.user_put(href, shifted(world.caldav.events()[href], 2))
    await world.sync(BUSY)
    assert (world.dingtalk.calls["update"], world.caldav.writes) == (1, 0)
    (source,) = world.dingtalk.events().values()
    assert (source.summary, source.description) == ("Board meeting", "layoffs")
    assert source.start == shifted(ev(), 3).start
    world.reset_counts()
    await world.sync(BUSY)
    assert world.writes() == 0


async def test_decline_removes_the_copy_and_undecline_brings_it_back(world: World) -> None:
    """skip_declined: declined -> copy deleted, DingTalk untouched; accepted -> copied again."""
    invited = dataclasses.replace(ev("x"), attendees=(Attendee(ALICE, partstat="accepted"),))
    dt = world.dingtalk.user_create(invited)
    await world.sync(DECLINED)
    assert len(world.caldav.items) == 1
    world.reset_counts()
    world.dingtalk.user_update(dt, attendees=(Attendee(ALICE, partstat="declined"),))
    report = await world.sync(DECLINED)
    assert (world.caldav.calls["delete"], world.dingtalk.writes, len(world.caldav.items)) == (
        1,
        0,
        0,
    )
    assert len(world.dingtalk.items) == 1
    assert report.counts.deleted == 1
    world.reset_counts()
    await world.sync(DECLINED, full=True)  # a full listing: the declined event is only skipped
    assert world.writes() == 0
    world.dingtalk.user_update(dt, attendees=(Attendee(ALICE, partstat="accepted"),))
    await world.sync(DECLINED)
    assert (world.caldav.calls["create"], len(world.caldav.items)) == (1, 1)


async def test_all_day_events_are_never_copied(world: World) -> None:
    """skip_all_day: an all-day DingTalk event stays there; a timed one is copied."""
    rules = Policy(shaping=Shaping(filter=Filter(skip_all_day=True)))
    world.dingtalk.user_create(ev("a", start=date(2025, 3, 3), end=date(2025, 3, 4)))
    world.dingtalk.user_create(ev("b", summary="timed"))
    report = await world.sync(rules)
    assert [e.summary for e in world.caldav.events().values()] == ["timed"]
    assert (report.counts.created, report.counts.skipped) == (1, 1)


async def test_prefix_round_trips_without_accumulating(world: World) -> None:
    """Prefix "[DT] ": DingTalk "Title" -> CalDAV "[DT] Title"; CalDAV "[DT] New" -> DingTalk
    "New"; many runs later no title holds the mark twice."""
    world.dingtalk.user_create(ev("x", summary="Title"))
    await world.sync(PREFIX)
    (href,) = world.caldav.items
    assert world.caldav.events()[href].summary == "[DT] Title"
    world.caldav.user_update(href, summary="[DT] New")
    world.reset_counts()
    await world.sync(PREFIX)
    assert (world.dingtalk.calls["update"], world.caldav.writes) == (1, 0)
    for _ in range(3):
        await world.sync(PREFIX)
        await world.sync(PREFIX, full=True)
    (dt_event,) = world.dingtalk.events().values()
    assert (dt_event.summary, world.caldav.events()[href].summary) == ("New", "[DT] New")
    assert world.writes() == 1


def test_unchanged_copy_showing_details_is_reshaped_once_a_binding_turns_busy() -> None:
    """A full copy read unchanged under a busy mirror is rewritten as the projection."""
    source = ev(description="secret", location="HQ")
    (action,) = run(pairs(paired(source)), caldav=full(r("u1.ics", source, '"e1"')), policy=BUSY)
    assert isinstance(action, Update)
    assert (action.target, action.reason) == (Side.CALDAV, "reshaped: busy mirror")
    assert action.event == busy_projection(source)
    assert action.pair.base == source


def test_busy_copy_retitled_by_its_user_is_not_reshaped() -> None:
    """A busy copy whose user retitled it shows no detail of the source: left alone."""
    p = busy_pair()
    assert p.base is not None
    mine = dataclasses.replace(busy_projection(p.base), summary="my block")
    listing = full(r("u1.ics", mine, '"e1"'))
    p = dataclasses.replace(p, caldav_fp=mine.fingerprint(), caldav_held=mine)
    assert list(run(pairs(p), caldav=listing, policy=BUSY)) == []


async def test_turning_a_binding_busy_hides_existing_copies_on_the_next_full_run(
    world: World,
) -> None:
    """Full mirror first; after the switch to busy a full run rewrites each copy once."""
    world.dingtalk.user_create(ev("x", summary="Salary talk", description="raise"))
    await world.sync()
    (copy,) = world.caldav.events().values()
    assert copy.summary == "Salary talk"
    world.reset_counts()
    await world.sync(BUSY, full=True)
    (copy,) = world.caldav.events().values()
    assert (copy.summary, copy.description, world.caldav.calls["update"]) == ("Busy", "", 1)
    world.reset_counts()
    await world.sync(BUSY, full=True)
    assert world.writes() == 0


def test_one_way_busy_copy_that_its_side_completed_is_not_rewritten_for_a_title() -> None:
    """to_dingtalk busy: DingTalk's copy reads with an organizer the projection lacks; a
    CalDAV title change compares against what syncd made of the base, so no write."""
    source = ev("cal-1", description="results")
    copy = dataclasses.replace(busy_projection(source), organizer=ALICE)
    p = dataclasses.replace(
        paired(source, href="cal-1.ics"),
        origin=Side.CALDAV,
        dingtalk_fp=copy.fingerprint(),
        dingtalk_held=copy,
    )
    policy = Policy(direction="to_dingtalk", shaping=Shaping(mirror_busy=True))
    renamed = dataclasses.replace(source, summary="Dentist")
    listing = inc(r("cal-1.ics", renamed, '"e2"'))
    (action,) = run(pairs(p), inc(r("dt-1", copy)), listing, policy)
    assert isinstance(action, Record)
    (moved,) = run(pairs(p), caldav=inc(r("cal-1.ics", shifted(renamed, 1), '"e3"')), policy=policy)
    assert isinstance(moved, Update)
    assert (moved.target, moved.fields) == (Side.DINGTALK, ("start", "end"))
