"""The ports the reconciler needs: one calendar side, and the mapping store.

Protocols only; implementations live in ``syncd.adapters`` (DingTalk, CalDAV, ICS) and
``syncd.store`` (Redis, memory). Every implementation runs the contract suite in
``tests/contract``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from syncd.model import BindingRef, Changes, Event, PairState, Side
from syncd.sync.records import DeadLetter, RunStatus


@dataclass(frozen=True, slots=True)
class Written:
    """What a write left on a side.

    ``id`` and ``etag`` (if the server said) of the item, and ``event``: the canonical
    form of what the side now holds, as a later read will report it (DingTalk: the write
    response translated back; CalDAV: the written text parsed back, or for a create the
    component it was serialised from, read as that text would be). Its fingerprint is
    what the store remembers, so our own write never reads as a foreign change even when
    the side cannot hold every field.
    """

    id: str
    etag: str | None
    event: Event


class CalendarSide(Protocol):
    """One calendar on one side of a binding.

    Reads report canonical :class:`~syncd.model.Event` values; writes take them. Errors
    are ``syncd.errors`` only: ``SyncTokenInvalid`` when a cursor is stale (the caller
    then asks again with ``cursor=None``), ``EtagMismatch``/``NotFound`` when a
    conditional write loses a race, ``Retryable`` subclasses for transient trouble.
    """

    side: Side

    async def changes(self, cursor: str | None) -> Changes:
        """Everything changed since ``cursor``; a full listing when ``cursor`` is None."""
        ...

    async def create(self, event: Event) -> Written:
        """Create ``event`` (never overwriting an existing item)."""
        ...

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Replace the item with ``event``, only if it still has ``etag`` (when given)."""
        ...

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete the item, only if it still has ``etag`` (when given); gone is fine."""
        ...


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    """A conflict the planner decided: both versions, the base, and who won."""

    uid: str
    fields: tuple[str, ...]
    dingtalk: Event
    caldav: Event
    base: Event | None
    winner: Side
    decided_at: str  # ISO-8601 UTC


@dataclass(frozen=True, slots=True)
class PairSlice:
    """Some of a binding's pairs (keyed by uid) and how many pairs the binding has."""

    pairs: dict[str, PairState]
    total: int


class MappingStore(Protocol):
    """Per-binding state: pairs, cursors, conflicts, dead letters, run bookkeeping.

    All keys are namespaced by tenant and binding. ``save_pair`` / ``drop_pair`` keep the
    three indexes (uid, DingTalk id, CalDAV href) consistent atomically.
    """

    async def load_pairs(self, ref: BindingRef) -> dict[str, PairState]:
        """All pairs of the binding, keyed by uid."""
        ...

    async def load_touched(
        self,
        ref: BindingRef,
        *,
        dingtalk_ids: Collection[str] = (),
        hrefs: Collection[str] = (),
        uids: Collection[str] = (),
    ) -> PairSlice:
        """The pairs an incremental run's changes touch, without loading the others.

        The pairs whose DingTalk id is in ``dingtalk_ids``, whose CalDAV href is in
        ``hrefs`` or whose uid is in ``uids``, plus every pair lacking a side (the planner
        always looks at those); and the binding's number of pairs. Its cost grows with the
        ids asked for, not with the binding's size.
        """
        ...

    async def some_hrefs(self, ref: BindingRef, count: int) -> list[str]:
        """Up to ``count`` CalDAV hrefs of the binding's pairs, any ones (random ones where
        the store can pick them so): a cheap hint of members, not a listing."""
        ...

    async def save_pair(self, ref: BindingRef, pair: PairState) -> None: ...

    async def drop_pair(self, ref: BindingRef, uid: str) -> None: ...

    async def get_cursor(self, ref: BindingRef, side: Side) -> str | None: ...

    async def set_cursors(self, ref: BindingRef, cursors: Mapping[Side, str | None]) -> None:
        """Commit both cursors at once (after every change up to them was applied)."""
        ...

    async def add_conflict(self, ref: BindingRef, record: ConflictRecord) -> None: ...

    async def list_conflicts(self, ref: BindingRef) -> list[ConflictRecord]: ...

    async def add_dead_letter(self, ref: BindingRef, letter: DeadLetter) -> None: ...

    async def list_dead_letters(self, ref: BindingRef) -> list[DeadLetter]: ...

    async def clear_dead_letters(self, ref: BindingRef, count: int | None = None) -> None:
        """Forget the oldest ``count`` dead letters (all when None): a replay clears only
        what it read, so a letter added meanwhile survives."""
        ...

    async def resolve_dead_letters(
        self, ref: BindingRef, *, binding: bool, uids: Collection[str] = ()
    ) -> list[DeadLetter]:
        """Remove (and return) the dead letters a successful run healed: the binding-level
        ones (no ``uid``) when ``binding``, and the item-level ones of ``uids``."""
        ...

    async def set_status(self, ref: BindingRef, status: RunStatus) -> None:
        """Record the outcome of the last run: the fields it sets replace, the others stay."""
        ...

    async def get_status(self, ref: BindingRef) -> RunStatus:
        """The merged status (state ``never-run`` before the first run)."""
        ...

    async def wipe(self, ref: BindingRef) -> None:
        """Forget everything about the binding (tests, and `--reset` operations)."""
        ...
