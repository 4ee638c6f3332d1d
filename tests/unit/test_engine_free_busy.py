"""Free/busy through the planner: a side that cannot hold it never causes a write back.

DingTalk stores ``freeBusyStatus`` but never returns it, so its copy always reads as busy
(``as_dingtalk_keeps``). The DingTalk-like side here applies that loss to what it stores;
the held mechanism (``PairState.dingtalk_held``) must then never take "busy" for a
DingTalk edit, in either direction and whichever side the event was born on.
"""

from __future__ import annotations

import dataclasses

import pytest

from syncd.model import Event, Side
from syncd.store.memory import MemoryStore
from syncd.sync import Policy
from syncd.sync.merge import effective
from syncd.translate import Context, as_dingtalk_keeps
from tests.fakes import Clock, MemorySide, World, ev

CTX = Context()


def dingtalk_reads(event: Event) -> Event:
    """What DingTalk's copy reads back as (free/busy lost, as in ``as_dingtalk_keeps``)."""
    kept = as_dingtalk_keeps(event, CTX)
    return dataclasses.replace(kept, uid=event.uid, updated=event.updated)


@pytest.fixture
def world() -> World:
    """A DingTalk-like side that cannot hold free/busy, a CalDAV side that can."""
    clock = Clock()
    dingtalk = MemorySide(Side.DINGTALK, dingtalk_like=True, normalize=dingtalk_reads, clock=clock)
    return World(dingtalk, MemorySide(Side.CALDAV, clock=clock), MemoryStore())


def _only(side: MemorySide) -> tuple[str, Event]:
    [(item_id, event)] = side.events().items()
    return item_id, event


async def _quiet(world: World) -> None:
    world.reset_counts()
    await world.sync()
    await world.sync()
    assert world.writes() == 0


async def test_free_caldav_event_survives_dingtalk_edits_without_write_backs(world: World) -> None:
    """Free in CalDAV → DingTalk (reads busy): no write back; a DingTalk title edit reaches
    CalDAV with free kept; CalDAV turning it busy, then free, writes DingTalk only."""
    href = world.caldav.user_create(ev("cal-1", summary="Focus", free_busy="free"))
    world.reset_counts()
    await world.sync()
    assert (world.dingtalk.writes, world.caldav.writes) == (1, 0)
    await _quiet(world)

    dt, _ = _only(world.dingtalk)
    world.dingtalk.user_update(dt, summary="Focus time")
    world.reset_counts()
    await world.sync()
    assert (world.dingtalk.writes, world.caldav.writes) == (0, 1)
    assert world.caldav.events()[href].summary == "Focus time"
    assert world.caldav.events()[href].free_busy == "free"
    await _quiet(world)

    for value in ("busy", "free"):
        world.caldav.user_update(href, free_busy=value)
        world.reset_counts()
        await world.sync()
        assert (world.dingtalk.calls["update"], world.caldav.writes) == (1, 0)
        assert world.caldav.events()[href].free_busy == value
        await _quiet(world)


async def test_dingtalk_born_event_marked_free_in_caldav_stays_free(world: World) -> None:
    """Born in DingTalk (busy), marked free in CalDAV: DingTalk is written, its busy read-back
    never flips CalDAV back, and a later DingTalk edit keeps CalDAV free."""
    dt = world.dingtalk.user_create(ev("x", summary="Sync"))
    await world.sync()
    href, copy = _only(world.caldav)
    assert copy.free_busy == "busy"
    world.caldav.user_update(href, free_busy="free")
    world.reset_counts()
    await world.sync()
    assert (world.dingtalk.calls["update"], world.caldav.writes) == (1, 0)
    await _quiet(world)
    world.dingtalk.user_update(dt, location="Room 9")
    world.reset_counts()
    await world.sync()
    assert world.caldav.events()[href].free_busy == "free"
    assert world.caldav.events()[href].location == "Room 9"
    assert world.dingtalk.writes == 0
    await _quiet(world)


async def test_one_way_mirror_in_dingtalk_follows_free_busy_changes(world: World) -> None:
    """A to_dingtalk binding: each CalDAV free/busy change is one DingTalk update, and the
    busy read-back never reads as a mirror edit to revert."""
    policy = Policy(direction="to_dingtalk")
    href = world.caldav.user_create(ev("cal-2", summary="Gym", free_busy="free"))
    await world.sync(policy)
    for value in ("busy", "free", "busy"):
        world.caldav.user_update(href, free_busy=value)
        world.reset_counts()
        await world.sync(policy)
        assert (world.dingtalk.calls["update"], world.caldav.writes) == (1, 0)
        world.reset_counts()
        await world.sync(policy)
        assert world.writes() == 0


def test_effective_takes_write_only_fields_from_the_base_only_while_unchanged() -> None:
    """DingTalk's read busy counts as the agreed free while its read has not moved; a read
    that moved (a DingTalk that reports the field) is taken as it is; CalDAV is untouched."""
    base = ev(free_busy="free")
    read = ev()
    assert effective(Side.DINGTALK, read, held=read, base=base).free_busy == "free"
    reported = ev(free_busy="free")
    assert effective(Side.DINGTALK, read, held=reported, base=base).free_busy == "busy"
    assert effective(Side.CALDAV, read, held=read, base=base).free_busy == "busy"
