"""Field-by-field three-way merge and the conflict policies. Pure functions on events.

Fields are compared in their fingerprint form (attendee lists order-insensitive, e-mails
case-insensitive), so "changed" here means exactly what a fingerprint change means.
A recurring event's ``overrides`` form one field: two sides editing different occurrences
of one series is a conflict on ``overrides``, decided by the policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.model import ConflictPolicy, Event, Side, encode_when, to_jsonable

# Identity and bookkeeping never take part in a merge.
MERGED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Event) if f.name not in {"uid", "updated"}
)
# Fields that only make sense together merge as one unit: a start taken from one side and
# an end from the other could mix a date with a date-time, or end before it starts.
_TOGETHER: tuple[tuple[str, ...], ...] = (("start", "end"), ("recurrence", "overrides"))
UNITS: tuple[tuple[str, ...], ...] = _TOGETHER + tuple(
    (name,) for name in MERGED_FIELDS if not any(name in unit for unit in _TOGETHER)
)


# Fields a side stores but never reports back: DingTalk accepts ``freeBusyStatus`` on writes
# and leaves it out of every answer, so its copy always reads "busy". While the side's read
# of such a field has not moved from what it held, the side holds the agreed (base) value,
# and that, not the read, decides whether the side must be written.
WRITE_ONLY: Mapping[Side, frozenset[str]] = {
    Side.DINGTALK: frozenset({"free_busy"}),
    Side.CALDAV: frozenset(),
}


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged event, the fields both sides changed differently, who won them, and
    for each side the fields it must be sent to hold the merged event (empty: no write).
    """

    event: Event
    conflicts: tuple[str, ...]
    winner: Side
    writes: Mapping[Side, tuple[str, ...]]


def _view(event: Event) -> dict[str, Any]:
    return to_jsonable(event, hashed_only=True)


def changed_fields(old: Event | None, new: Event) -> tuple[str, ...]:
    """The mapped fields in which ``new`` differs from ``old`` (all of them if no ``old``)."""
    if old is None:
        return MERGED_FIELDS
    a, b = _view(old), _view(new)
    return tuple(name for name in MERGED_FIELDS if a[name] != b[name])


def winner(policy: ConflictPolicy, dingtalk: Event, caldav: Event) -> Side:
    """The side whose value a conflicting field takes.

    ``newest`` compares :attr:`Event.updated`; a tie, or a side without a time, goes to
    DingTalk unless only CalDAV knows its time.
    """
    if policy == "dingtalk":
        return Side.DINGTALK
    if policy == "caldav":
        return Side.CALDAV
    d, c = dingtalk.updated, caldav.updated
    if c is not None and (d is None or _later(c, d)):
        return Side.CALDAV
    return Side.DINGTALK


def _later(a: datetime, b: datetime) -> bool:
    try:
        return a > b
    except TypeError:  # naive against aware: cannot be ordered, treat as a tie
        return False


def merge(
    base: Event | None,
    dingtalk: Event,
    caldav: Event,
    policy: ConflictPolicy,
    *,
    uid: str,
    held: Mapping[Side, Event | None] | None = None,
) -> MergeResult:
    """Merge two versions of one event, each compared with what its side held before.

    ``held`` gives, per side, what that side held at the last sync (default: ``base``).
    A field changed on one side only takes that side's value; changed on both sides to
    the same value, that value; changed on both sides differently, it is a conflict and
    takes the policy winner's value; changed on neither side, it keeps the agreed
    ``base`` value, even where a side holds something else because it cannot keep the
    field (and that side is not written for it). Without a base (two items paired by
    identity, never synced) every differing field is a conflict.
    """
    preferred = winner(policy, dingtalk, caldav)
    events = {Side.DINGTALK: dingtalk, Side.CALDAV: caldav}
    views = {side: _view(event) for side, event in events.items()}
    before = {side: _held_view((held or {}).get(side) or base) for side in Side}
    holds = {
        side: _view(effective(side, events[side], (held or {}).get(side) or base, base))
        for side in Side
    }
    values: dict[str, Any] = {}
    conflicts: list[str] = []
    writes: dict[Side, list[str]] = {Side.DINGTALK: [], Side.CALDAV: []}
    for unit in UNITS:
        source, conflict = _pick(unit, views, before, preferred)
        if source is None:
            assert base is not None  # nothing reads as unchanged without a base
            values.update({n: getattr(base, n) for n in unit})
            continue
        conflicts += unit if conflict else ()
        values.update({n: getattr(events[source], n) for n in unit})
        for side in Side:
            if _values(holds[side], unit) != _values(views[source], unit):
                writes[side] += unit
    stamps = [t for t in (dingtalk.updated, caldav.updated) if t is not None]
    updated = events[preferred].updated if len(stamps) < 2 else _newest(stamps)
    merged = dataclasses.replace(dingtalk, uid=uid, updated=updated, **values)
    return MergeResult(
        merged,
        _ordered(conflicts),
        preferred,
        {side: _ordered(names) for side, names in writes.items()},
    )


def effective(side: Side, event: Event, held: Event | None, base: Event | None) -> Event:
    """``event`` as ``side`` holds it: its ``WRITE_ONLY`` fields (master and overrides, by
    recurrence id) taken from ``base`` where its read still equals what it ``held``."""
    names = WRITE_ONLY[side]
    if not names or base is None or held is None:
        return event

    def fix(item: Event, was: Event | None, agreed: Event | None) -> Event:
        if was is None or agreed is None:
            return item
        same = {n: getattr(agreed, n) for n in names if getattr(item, n) == getattr(was, n)}
        return dataclasses.replace(item, **same)

    was, agreed = _by_rid(held), _by_rid(base)
    overrides = tuple(fix(o, was.get(_rid(o)), agreed.get(_rid(o))) for o in event.overrides)
    return dataclasses.replace(fix(event, held, base), overrides=overrides)


def _rid(event: Event) -> str:
    return encode_when(event.recurrence_id) if event.recurrence_id is not None else ""


def _by_rid(event: Event) -> dict[str, Event]:
    return {_rid(o): o for o in event.overrides}


def _held_view(event: Event | None) -> dict[str, Any] | None:
    return _view(event) if event is not None else None


def _values(view: Mapping[str, Any], unit: tuple[str, ...]) -> list[Any]:
    return [view[name] for name in unit]


def _pick(
    unit: tuple[str, ...],
    views: Mapping[Side, Mapping[str, Any]],
    before: Mapping[Side, Mapping[str, Any] | None],
    preferred: Side,
) -> tuple[Side | None, bool]:
    """Whose value a unit of fields takes (None: the base's), and whether it conflicted."""
    now = {side: _values(views[side], unit) for side in Side}
    changed = {side: (b := before[side]) is None or now[side] != _values(b, unit) for side in Side}
    if not any(changed.values()):
        return None, False  # neither side changed it
    if all(changed.values()) and now[Side.DINGTALK] != now[Side.CALDAV]:
        return preferred, True  # changed on both sides differently: the policy decides
    return (Side.DINGTALK if changed[Side.DINGTALK] else Side.CALDAV), False


def _ordered(names: list[str]) -> tuple[str, ...]:
    return tuple(name for name in MERGED_FIELDS if name in names)


def _newest(stamps: list[datetime]) -> datetime:
    return stamps[1] if _later(stamps[1], stamps[0]) else stamps[0]
