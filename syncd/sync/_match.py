"""Matching what each side reports to the stored pairs, and what each pair looks like now.

For every pair and side the result is one :class:`Seen`: unseen (an incremental listing
did not mention it: unchanged), same or changed (by fingerprint against the stored one,
never by etag), gone (reported deleted, absent from a complete listing, or cancelled),
broken (present but untranslatable: never treated as deleted), or missing (the pair never
had an item there). Items matching no pair are returned as unpaired, per side.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from syncd.model import Changes, PairState, Remote, Side
from syncd.sync.plan import Skip, pair_fp, pair_id


class Kind(enum.Enum):
    """How one side of one pair looks in this run."""

    UNSEEN = "unseen"
    SAME = "same"
    CHANGED = "changed"
    GONE = "gone"
    BROKEN = "broken"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Seen:
    """One side of one pair: its kind, and the item read (for same/changed/broken)."""

    kind: Kind
    remote: Remote | None = None


@dataclass(slots=True)
class SideMatch:
    """The outcome of matching one side's listing against the pairs."""

    hits: dict[str, Remote] = field(default_factory=dict)  # pair uid -> item
    gone: set[str] = field(default_factory=set)  # pair uids
    unpaired: list[Remote] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


def is_gone(item: Remote) -> bool:
    """Whether an item reads as deleted (a cancelled event is a deletion)."""
    return item.event is not None and item.event.status == "cancelled"


def match_side(side: Side, changes: Changes, pairs: Mapping[str, PairState]) -> SideMatch:
    """Match ``side``'s items to pairs: by id first, then by the event's UID (a moved href)."""
    by_id = {pair_id(p, side): uid for uid, p in pairs.items() if pair_id(p, side) is not None}
    out = SideMatch()
    items = sorted(changes.items, key=lambda r: r.id)
    by_uid: list[Remote] = []
    for item in items:
        uid = by_id.get(item.id)
        if uid is None:
            by_uid.append(item)
        else:
            out.hits[uid] = item
    for item in by_uid:
        uid = item.event.uid if item.event is not None else None
        if uid is None or uid not in pairs:
            out.unpaired.append(item)
        elif uid in out.hits:
            reason = f"another item of this side already holds uid {uid}"
            out.skips.append(Skip(item.id, reason, side))
        else:
            out.hits[uid] = item  # same UID under a new id: a move, not delete + create
    for item_id in changes.deleted:
        uid = by_id.get(item_id)
        if uid is not None and uid not in out.hits:
            out.gone.add(uid)
    if changes.complete:
        out.gone.update(
            uid for uid in by_id.values() if uid not in out.hits and changes.covers(pairs[uid].base)
        )
    return out


def seen(pair: PairState, side: Side, match: SideMatch) -> Seen:
    """What ``side`` of ``pair`` looks like in this run."""
    item = match.hits.get(pair.uid)
    if item is None:
        if pair_id(pair, side) is None:
            return Seen(Kind.MISSING)
        return Seen(Kind.GONE) if pair.uid in match.gone else Seen(Kind.UNSEEN)
    if item.event is None:
        return Seen(Kind.BROKEN, item)
    if is_gone(item):
        return Seen(Kind.GONE)
    same = item.event.fingerprint() == pair_fp(pair, side)
    return Seen(Kind.SAME if same else Kind.CHANGED, item)
