"""The planner's output: frozen action values, the :class:`Plan` holding them, and counts.

Every write action carries ``pair``: the :class:`~syncd.model.PairState` to store once the
write succeeded, complete except for the written side's id, fingerprint and etag, which
:func:`settle` fills in from the :class:`~syncd.sync.ports.Written` the side returned.
Actions of one pair share one ``pair`` value, so a pair written on both sides is saved
once, after both writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from syncd.model import Event, PairState, Side
from syncd.sync.ports import ConflictRecord, Written
from syncd.sync.shaping import FILTERED


@dataclass(frozen=True, slots=True)
class Create:
    """Create ``event`` on ``target`` (a new item, or the edit-wins re-creation)."""

    target: Side
    uid: str
    event: Event
    pair: PairState
    reason: str = "new"

    @property
    def source_id(self) -> str | None:
        """The id of the item this copy comes from, on the other side."""
        return pair_id(self.pair, self.target.other)

    @property
    def source_fp(self) -> str | None:
        """The fingerprint of the source item as read."""
        return pair_fp(self.pair, self.target.other)

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        return f"create {self.target}: {self.uid} {self.event.summary!r} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Update:
    """Replace ``target_id`` on ``target`` with ``event``, if it still has ``etag``."""

    target: Side
    uid: str
    target_id: str
    etag: str | None
    event: Event
    fields: tuple[str, ...]
    pair: PairState
    reason: str = "changed"

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        changed = ",".join(self.fields) or "-"
        return f"update {self.target}: {self.uid} [{changed}] ({self.reason})"


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``target_id`` on ``target``, if it still has ``etag``; then drop the pair."""

    target: Side
    uid: str
    target_id: str
    etag: str | None
    reason: str = "deleted on the other side"

    @property
    def filtered(self) -> bool:
        """Whether this removes a copy whose source stopped passing the binding's filter."""
        return self.reason.startswith(FILTERED)

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        return f"delete {self.target}: {self.uid} {self.target_id} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Record:
    """Store ``pair`` without writing to either side (echo, identical edits, moved href)."""

    pair: PairState
    reason: str = "refresh"

    @property
    def uid(self) -> str:
        return self.pair.uid

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        return f"record {self.pair.uid} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop the pair ``uid`` from the store: nothing is left to keep in agreement."""

    uid: str
    reason: str = "gone on both sides"

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        return f"forget {self.uid} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A decided conflict; the Update/Create carrying the decision follows in the plan."""

    record: ConflictRecord

    @property
    def uid(self) -> str:
        return self.record.uid

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        fields = ",".join(self.record.fields)
        return f"conflict {self.record.uid} [{fields}] -> {self.record.winner} wins"


@dataclass(frozen=True, slots=True)
class Skip:
    """An item left alone: untranslatable, one-way binding, duplicate identity, ..."""

    ref: str  # the pair's uid, or the item's id when unpaired
    reason: str
    side: Side | None = None

    @property
    def filtered(self) -> bool:
        """Whether the binding's filter left the item on its side (not an error)."""
        return self.reason.startswith(FILTERED)

    @property
    def uid(self) -> str:
        return self.ref

    def describe(self) -> str:
        """One line for logs and ``--dry-run``."""
        where = f" {self.side}" if self.side else ""
        return f"skip{where}: {self.ref} ({self.reason})"


Action = Create | Update | Delete | Record | Forget | Conflict | Skip
Write = Create | Update | Delete


@dataclass(frozen=True, slots=True)
class Counts:
    """How many of each kind of outcome (planned, or applied in a report)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    skipped: int = 0
    errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in _COUNT_FIELDS}
        return Counts(**values)

    def as_dict(self) -> dict[str, int]:
        """Plain mapping, for status records and JSON output."""
        return {f.name: getattr(self, f.name) for f in _COUNT_FIELDS}


_COUNT_FIELDS = dataclasses.fields(Counts)


def count(action: Action) -> tuple[Side | None, Counts]:
    """The side an action counts against, and what it counts as."""
    if isinstance(action, Create):
        return action.target, Counts(created=1)
    if isinstance(action, Update):
        return action.target, Counts(updated=1)
    if isinstance(action, Delete):
        return action.target, Counts(deleted=1)
    if isinstance(action, Conflict):
        return action.record.winner.other, Counts(conflicts=1)
    if isinstance(action, Skip):
        return action.side, Counts(skipped=1)
    return None, Counts()


@dataclass(frozen=True, slots=True)
class Plan:
    """What one reconcile will do, in order; held deletions are reported, not executed."""

    actions: tuple[Action, ...] = ()
    held_deletions: tuple[Delete, ...] = ()
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def writes(self) -> tuple[Write, ...]:
        """The actions that write to a side."""
        return tuple(a for a in self.actions if isinstance(a, Create | Update | Delete))

    def per_side(self) -> dict[Side, Counts]:
        """Planned counts per side (a conflict counts on the side that lost it)."""
        out = {Side.DINGTALK: Counts(), Side.CALDAV: Counts()}
        for action in self.actions:
            side, counts = count(action)
            if side is not None:
                out[side] = out[side] + counts
        return out

    def counts(self) -> Counts:
        """Planned counts over both sides (skips of unpaired ids included)."""
        total = sum(self.per_side().values(), Counts())
        unsided = sum(
            (count(a)[1] for a in self.actions if isinstance(a, Skip) and a.side is None),
            Counts(),
        )
        return total + unsided

    def describe(self) -> list[str]:
        """One line per action, then held deletions and warnings (for ``--dry-run``)."""
        lines = [a.describe() for a in self.actions]
        lines += [f"held: {d.describe()}" for d in self.held_deletions]
        lines += [f"warning: {w}" for w in self.warnings]
        return lines


def pair_id(pair: PairState, side: Side) -> str | None:
    """The pair's item id on ``side``."""
    return pair.dingtalk_id if side is Side.DINGTALK else pair.caldav_href


def pair_etag(pair: PairState, side: Side) -> str | None:
    """The etag the pair remembers for ``side`` (DingTalk: the item's ``updateTime``)."""
    return pair.dingtalk_etag if side is Side.DINGTALK else pair.caldav_etag


def pair_fp(pair: PairState, side: Side) -> str | None:
    """The fingerprint the pair remembers for ``side``."""
    return pair.dingtalk_fp if side is Side.DINGTALK else pair.caldav_fp


def held_of(pair: PairState, side: Side) -> Event | None:
    """What ``side`` held at the last sync (``base`` unless recorded otherwise)."""
    held = pair.dingtalk_held if side is Side.DINGTALK else pair.caldav_held
    return held if held is not None else pair.base


def with_side(
    pair: PairState, side: Side, item_id: str | None, fp: str | None, etag: str | None
) -> PairState:
    """``pair`` with ``side``'s id, fingerprint and etag replaced."""
    if side is Side.DINGTALK:
        return dataclasses.replace(pair, dingtalk_id=item_id, dingtalk_fp=fp, dingtalk_etag=etag)
    return dataclasses.replace(pair, caldav_href=item_id, caldav_fp=fp, caldav_etag=etag)


def with_held(pair: PairState, side: Side, event: Event | None) -> PairState:
    """``pair`` remembering that ``side`` holds ``event`` (None when it equals the base)."""
    base_fp = pair.base.fingerprint() if pair.base is not None else None
    if event is not None and event.fingerprint() == base_fp:
        event = None
    if side is Side.DINGTALK:
        return dataclasses.replace(pair, dingtalk_held=event)
    return dataclasses.replace(pair, caldav_held=event)


def rebased(pair: PairState, base: Event | None) -> PairState:
    """``pair`` with a new agreed ``base``, keeping what each side held."""
    held = {side: held_of(pair, side) for side in Side}
    out = dataclasses.replace(pair, base=base)
    for side in Side:
        out = with_held(out, side, held[side])
    return out


def settle(pair: PairState, target: Side, written: Written) -> PairState:
    """The pair after a successful write to ``target``: echo suppression in one place.

    The fingerprint stored is that of what the side now holds (``written.event``), so the
    change notification our own write causes compares equal on the next run; the event
    itself is kept when it differs from the base, so a field the side could not keep is
    not mistaken for an edit there.
    """
    fp = written.event.fingerprint()
    out = with_side(pair, target, written.id, fp, written.etag)
    return with_held(out, target, written.event)


def by_uid(actions: tuple[Action, ...]) -> Mapping[str, tuple[Action, ...]]:
    """Actions grouped by the pair they concern, in plan order."""
    groups: dict[str, list[Action]] = {}
    for action in actions:
        groups.setdefault(action.uid, []).append(action)
    return {uid: tuple(group) for uid, group in groups.items()}
