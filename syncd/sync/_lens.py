"""A pair seen through its binding's shaping: the copy side in the origin's terms.

The planner decides in *canonical* terms, those of the pair's origin (the side the event
was born on, ``PairState.origin``): the stored ``base`` is canonical, and so is every
event it merges. The copy side (the other one) holds ``Shaping.out(canonical)``; what it
reads is brought into canonical terms with ``Shaping.back`` (completed from the base, or
from the origin's version when there is no base yet), and whether it needs writing is
decided in its own terms with ``Shaping.norm``. Without transforms every function here is
the identity, so unshaped bindings plan exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.model import Event, PairState, Side
from syncd.sync.merge import MergeResult, changed_fields, effective
from syncd.sync.plan import held_of
from syncd.sync.policy import Policy


def copy_side(pair: PairState) -> Side:
    """The side holding the pair's copy (the one that is not its origin)."""
    return pair.origin.other


def shapes(policy: Policy, pair: PairState, side: Side) -> bool:
    """Whether ``side`` holds a shaped copy of the pair's event."""
    return policy.shaping.transforms and side is copy_side(pair)


def shaped(policy: Policy, pair: PairState, side: Side, event: Event) -> Event:
    """What ``side`` should hold of the canonical ``event``."""
    return policy.shaping.out(event) if shapes(policy, pair, side) else event


def canon(
    policy: Policy, pair: PairState, side: Side, event: Event | None, ref: Event | None
) -> Event | None:
    """``side``'s ``event`` in canonical terms (``ref``: the source version to complete a
    copy from; see :func:`reference`)."""
    if event is None or not policy.shaping.transforms or side is not copy_side(pair):
        return event
    return policy.shaping.back(event, ref)


def normal(policy: Policy, pair: PairState, side: Side, event: Event) -> Event:
    """``event`` as read on ``side``, as syncd would have shaped what it shows: compared
    with :func:`shaped`, it tells whether ``side`` needs a write."""
    if not policy.shaping.transforms or side is not copy_side(pair):
        return event
    return policy.shaping.norm(event)


def reference(pair: PairState, origin_event: Event | None) -> Event | None:
    """The source version a copy is completed from: the agreed base, else the origin's."""
    return pair.base if pair.base is not None else origin_event


def copy_writes(
    policy: Policy,
    pair: PairState,
    raw: Mapping[Side, Event | None],
    merged: MergeResult,
) -> dict[Side, tuple[str, ...]]:
    """The fields each side must be sent after ``merged``. The merge decides in canonical
    terms; of what it would send the copy (read as ``raw``), only fields that differ once
    shaped are sent: a busy copy is not written for a title change, nor a copy whose user
    removed its prefix for that. A copy whose user retitled it to something that differs
    from the marked title once shaped (say, the mark typed twice) gets the marked title."""
    out = dict(merged.writes)
    copy = copy_side(pair)
    held = raw[copy]
    if not policy.shaping.transforms or held is None:
        return out
    before = held_of(pair, copy)
    holds = effective(copy, held, before, pair.base)
    wanted = shaped(policy, pair, copy, merged.event)
    differ = changed_fields(normal(policy, pair, copy, holds), wanted)
    names = [name for name in out[copy] if name in differ]
    retitled = before is not None and held.summary != before.summary
    if policy.shaping.summary_prefix and retitled and "summary" in differ:
        names.append("summary")
    out[copy] = tuple(sorted(set(names), key=names.index))
    return out
