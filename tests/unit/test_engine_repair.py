"""Lost store and racing edits: exact re-pairing by what DingTalk keeps, conditional writes.

Planner table tests (pure) plus a few runs through the reconciler with in-memory sides.
"""

from __future__ import annotations

import dataclasses

from syncd.model import Attendee, Event, PairState, Side
from syncd.sync import Delete, Record, Update
from syncd.sync.policy import Policy
from tests.fakes import REF, at, drop_description, ev, full, inc, new_world, paired, pairs, r, run


def failing(event: Event) -> Event:
    raise ValueError("cannot say")


KEEPS = Policy(dingtalk_keeps=drop_description)
BOB = Attendee("bob@acme.example", "Bob", "accepted")


def test_dingtalk_copy_of_a_caldav_event_is_re_paired_without_writes() -> None:
    """A DingTalk item holding what DingTalk keeps of an unpaired CalDAV item is recorded:
    the CalDAV event as base, DingTalk's copy as what DingTalk holds, both etags kept."""
    c = ev("client-1@example", description="agenda")
    d = ev("dingtalk-x@syncd", description="")
    plan = run({}, full(r("dt-9", d, "1700")), full(r("c.ics", c, '"e1"')), KEEPS)
    assert [type(a) for a in plan] == [Record]
    pair = plan.actions[0].pair  # type: ignore[union-attr]
    assert (pair.uid, pair.dingtalk_id, pair.caldav_href) == ("client-1@example", "dt-9", "c.ics")
    assert pair.base == c
    assert pair.origin is Side.CALDAV
    assert pair.dingtalk_held is not None
    assert pair.dingtalk_held.description == ""
    assert (pair.dingtalk_etag, pair.caldav_etag) == ("1700", '"e1"')
    assert (pair.dingtalk_fp, pair.caldav_fp) == (d.fingerprint(), c.fingerprint())


def test_without_the_projection_such_copies_are_duplicated() -> None:
    """The same listing without ``dingtalk_keeps`` copies each item over (what it fixes)."""
    c = ev("client-1@example", description="agenda")
    d = ev("dingtalk-x@syncd", description="")
    plan = run({}, full(r("dt-9", d)), full(r("c.ics", c)), Policy())
    assert sorted(type(a).__name__ for a in plan) == ["Create", "Create"]


def test_attendee_answers_do_not_prevent_a_match() -> None:
    """Other attendees' answers are theirs to give in DingTalk: a copy where bob has not
    answered yet matches a CalDAV event claiming he accepted."""
    c = ev("client-1@example", attendees=(BOB,))
    d = ev("dingtalk-x@syncd", attendees=(dataclasses.replace(BOB, partstat="needs-action"),))
    plan = run({}, full(r("dt-9", d)), full(r("c.ics", c)), KEEPS)
    assert [type(a) for a in plan] == [Record]


def test_a_different_field_is_no_match() -> None:
    """Anything DingTalk would keep that differs (here the title) is two events."""
    c = ev("client-1@example", description="agenda")
    d = ev("dingtalk-x@syncd", summary="Other")
    plan = run({}, full(r("dt-9", d)), full(r("c.ics", c)), KEEPS)
    assert sorted(type(a).__name__ for a in plan) == ["Create", "Create"]


def test_a_failing_projection_falls_back_to_copies() -> None:
    """A projection that raises matches nothing (logged); the run goes on."""
    c = ev("client-1@example", description="agenda")
    d = ev("dingtalk-x@syncd")
    plan = run({}, full(r("dt-9", d)), full(r("c.ics", c)), Policy(dingtalk_keeps=failing))
    assert sorted(type(a).__name__ for a in plan) == ["Create", "Create"]


def test_same_uid_couple_holding_the_projection_is_recorded_as_born_in_dingtalk() -> None:
    """A DingTalk-born event whose CalDAV copy gained fields DingTalk cannot keep is
    re-paired without a conflict or a write, and stays DingTalk-born (sibling bindings)."""
    uid = "dingtalk-x@syncd"
    plan = run(
        {},
        full(r("dt-9", ev(uid, updated=at(1)))),
        full(r("c.ics", ev(uid, description="notes", updated=at(2)))),
        KEEPS,
    )
    assert [type(a) for a in plan] == [Record]
    assert plan.actions[0].pair.origin is Side.DINGTALK  # type: ignore[union-attr]


def test_delete_of_an_unseen_dingtalk_item_is_conditional() -> None:
    """Deleted in CalDAV, DingTalk not mentioned: the DingTalk delete carries the
    updateTime remembered from the last sync, so an edit made meanwhile fails it."""
    pair = dataclasses.replace(paired(ev()), dingtalk_etag="1700")
    plan = run(pairs(pair), caldav=inc(deleted=("u1.ics",)))
    assert [(type(a), a.etag) for a in plan if isinstance(a, Delete)] == [(Delete, "1700")]


def test_update_of_an_unseen_dingtalk_item_is_conditional() -> None:
    """Edited in CalDAV, DingTalk not mentioned: the DingTalk update is conditional too."""
    pair = dataclasses.replace(paired(ev()), dingtalk_etag="1700")
    plan = run(pairs(pair), caldav=inc(r("u1.ics", ev(summary="Moved"), '"e2"')))
    assert [(type(a), a.etag) for a in plan] == [(Update, "1700")]


def test_a_new_dingtalk_update_time_alone_is_recorded() -> None:
    """Same content, new updateTime: recorded, so the stored etag stays current and a
    later conditional write does not fail forever."""
    pair = dataclasses.replace(paired(ev()), dingtalk_etag="1700")
    plan = run(pairs(pair), inc(r("dt-1", ev(), "1800")))
    assert [type(a) for a in plan] == [Record]
    assert plan.actions[0].pair.dingtalk_etag == "1800"  # type: ignore[union-attr]


async def test_lost_store_with_a_lossy_dingtalk_re_pairs_without_writes() -> None:
    """CalDAV events with descriptions (DingTalk drops them), store lost, full run: every
    item re-pairs with its copy; nothing is written and nothing is duplicated."""
    world = new_world()
    world.dingtalk.normalize = drop_description
    for n in range(3):
        world.caldav.user_create(ev(f"c{n}@client", f"E{n}", description=f"agenda {n}"))
    world.dingtalk.user_create(ev("ignored", "From DingTalk"))
    await world.sync(KEEPS)
    await world.store.wipe(REF)
    world.reset_counts()
    report = await world.sync(KEEPS, full=True)
    assert world.writes() == 0, report.plan.describe()
    assert (len(world.dingtalk.items), len(world.caldav.items)) == (4, 4)
    stored: dict[str, PairState] = await world.store.load_pairs(REF)
    assert len(stored) == 4


def test_a_touch_without_an_edit_does_not_resurrect() -> None:
    """Deleted in CalDAV while DingTalk only moved its updateTime (no mapped field
    changed): the deletion goes through, with the new updateTime; nothing is re-created."""
    pair = dataclasses.replace(paired(ev()), dingtalk_etag="1700")
    plan = run(pairs(pair), inc(r("dt-1", ev(), "1800")), inc(deleted=("u1.ics",)))
    assert [(type(a), a.target, a.etag) for a in plan] == [(Delete, Side.DINGTALK, "1800")]  # type: ignore[union-attr]
