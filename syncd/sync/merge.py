"""Field-by-field three-way merge and the conflict policies. Pure functions on events.

Fields are compared in their fingerprint form (attendee lists order-insensitive, e-mails
case-insensitive), so "changed" here means exactly what a fingerprint change means.
A recurring event's ``overrides`` form one field: two sides editing different occurrences
of one series is a conflict on ``overrides``, decided by the policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.model import ConflictPolicy, Event, Side, to_jsonable

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


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged event, the fields both sides changed differently, and who won them."""

    event: Event
    conflicts: tuple[str, ...]
    winner: Side


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
    base: Event | None, dingtalk: Event, caldav: Event, policy: ConflictPolicy, *, uid: str
) -> MergeResult:
    """Merge two edited versions of one event against their common ``base``.

    A field changed on one side only takes that side's value; a field changed on both
    sides to the same value takes it; a field changed on both sides differently is a
    conflict and takes the policy winner's value. Without a base (two items paired by
    identity, never synced) every differing field is a conflict.
    """
    side = winner(policy, dingtalk, caldav)
    views = {Side.DINGTALK: _view(dingtalk), Side.CALDAV: _view(caldav)}
    events = {Side.DINGTALK: dingtalk, Side.CALDAV: caldav}
    base_view = _view(base) if base is not None else None
    values: dict[str, Any] = {}
    conflicts: list[str] = []
    for unit in UNITS:
        d = [views[Side.DINGTALK][n] for n in unit]
        c = [views[Side.CALDAV][n] for n in unit]
        b = [base_view[n] for n in unit] if base_view is not None else None
        if d == c or b == c:
            source = Side.DINGTALK  # the same on both sides, or only DingTalk changed it
        elif b == d:
            source = Side.CALDAV  # only CalDAV changed it
        else:
            source = side
            conflicts.extend(unit)
        values.update({n: getattr(events[source], n) for n in unit})
    stamps = [t for t in (dingtalk.updated, caldav.updated) if t is not None]
    updated = events[side].updated if len(stamps) < 2 else _newest(stamps)
    merged = dataclasses.replace(dingtalk, uid=uid, updated=updated, **values)
    ordered = tuple(name for name in MERGED_FIELDS if name in conflicts)
    return MergeResult(merged, ordered, side)


def _newest(stamps: list[datetime]) -> datetime:
    return stamps[1] if _later(stamps[1], stamps[0]) else stamps[0]
