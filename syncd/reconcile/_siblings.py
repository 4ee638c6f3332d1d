"""Bindings that share one DingTalk calendar must not copy each other's events.

Two bindings of the same DingTalk user (say a "work" and a "personal" CalDAV calendar) both
see the user's whole DingTalk calendar. An event that binding A brought into DingTalk from
its CalDAV calendar belongs to A: binding B leaves it out of its DingTalk listing, so it is
never copied into B's calendar. A's pairs say which DingTalk ids those are (pairs whose
origin is CalDAV). If B copied such an event before A recorded its pair (a race: A creates
in DingTalk, B lists, A saves its pair), B's next run removes its copy again: a full listing
lacks the event, and an incremental one reports every foreign id as deleted (ids B never
paired mean nothing to the planner). A ``to_caldav`` binding is a mirror of
the whole DingTalk calendar and has no siblings (see ``syncd.worker.wiring.siblings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from syncd.model import BindingRef, Changes, Event, Side
from syncd.sync.ports import CalendarSide, MappingStore, Written


async def owned_elsewhere(store: MappingStore, siblings: Iterable[BindingRef]) -> frozenset[str]:
    """DingTalk ids that sibling bindings brought in from their own calendars."""
    owned: set[str] = set()
    for ref in siblings:
        for pair in (await store.load_pairs(ref)).values():
            if pair.origin is Side.CALDAV and pair.dingtalk_id:
                owned.add(pair.dingtalk_id)
    return frozenset(owned)


class WithoutForeign:
    """A DingTalk side whose listings leave out the ids in ``foreign``; writes pass through."""

    def __init__(self, inner: CalendarSide, foreign: frozenset[str]) -> None:
        self.inner = inner
        self.foreign = foreign
        self.side = inner.side

    async def changes(self, cursor: str | None) -> Changes:
        """The inner side's changes without the foreign items; incremental ones report them
        deleted (see the module docstring)."""
        found = await self.inner.changes(cursor)
        if not self.foreign:
            return found
        deleted = tuple(d for d in found.deleted if d not in self.foreign)
        if not found.complete:  # a copy made in the race above goes on the next run
            deleted += tuple(sorted(self.foreign))
        return dataclasses.replace(
            found, items=tuple(i for i in found.items if i.id not in self.foreign), deleted=deleted
        )

    async def create(self, event: Event) -> Written:
        return await self.inner.create(event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        return await self.inner.update(item_id, event, etag)

    async def delete(self, item_id: str, etag: str | None) -> None:
        await self.inner.delete(item_id, etag)
