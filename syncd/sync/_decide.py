"""The three-way decision for one mapped pair (vdirsyncer's table, one line per case).

==========  ==========  =============================================================
DingTalk    CalDAV      decision
==========  ==========  =============================================================
broken      any         skip: an untranslatable item is never deleted nor overwritten
gone        gone        forget the pair
gone        changed     the edit wins: re-create on DingTalk, pair repointed
gone        unchanged   delete on CalDAV (subject to the deletion threshold)
changed     changed     identical: record; else merge field by field against the base
changed     unchanged   update CalDAV with DingTalk's version
unchanged   unchanged   record refreshed ids/etags if they moved, else nothing
==========  ==========  =============================================================

and the mirror images. "Unchanged" includes unseen (an incremental listing that does not
mention the item). In a one-way binding the source's version always wins and the mirror
is reverted (see :class:`~syncd.sync.policy.Policy`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from syncd.model import Event, PairState, Side
from syncd.sync._match import Kind, Seen
from syncd.sync.merge import changed_fields, merge
from syncd.sync.plan import (
    Action,
    Conflict,
    Create,
    Delete,
    Forget,
    Record,
    Skip,
    Update,
    pair_id,
    with_side,
)
from syncd.sync.policy import Policy
from syncd.sync.ports import ConflictRecord

View = dict[Side, Seen]
_CHANGED = {Kind.CHANGED, Kind.MISSING}  # a missing item is re-created like an edit wins


def decide(pair: PairState, view: View, policy: Policy, now: datetime) -> list[Action]:
    """The actions that bring ``pair`` back into agreement."""
    kinds = {side: view[side].kind for side in Side}
    for side in Side:
        item = view[side].remote
        if kinds[side] is Kind.BROKEN and item is not None:
            return [Skip(pair.uid, f"untranslatable: {item.error or 'unknown error'}", side)]
    gone = [s for s in Side if kinds[s] in {Kind.GONE, Kind.MISSING}]
    if len(gone) == 2:
        return [Forget(pair.uid)]
    if gone:
        return _one_gone(pair, gone[0], view, policy)
    changed = [s for s in Side if kinds[s] is Kind.CHANGED]
    if len(changed) == 2:
        return _both_changed(pair, view, policy, now)
    if changed:
        return _one_changed(pair, changed[0], view, policy)
    return _refresh(pair, view)


def after(pair: PairState, view: View, base: Event | None) -> PairState:
    """``pair`` with the ids, fingerprints and etags just read, and a new base."""
    out = pair
    for side in Side:
        item = view[side].remote
        if item is not None and item.event is not None:
            out = with_side(out, side, item.id, item.event.fingerprint(), item.etag)
    return dataclasses.replace(out, base=base)


def event_of(pair: PairState, view: View, side: Side) -> Event | None:
    """``side``'s current version of the pair's event (the base when it was not read)."""
    item = view[side].remote
    event = item.event if item is not None and item.event is not None else pair.base
    return dataclasses.replace(event, uid=pair.uid) if event is not None else None


def etag_of(pair: PairState, view: View, side: Side) -> str | None:
    """The etag to write ``side`` under: the one just read, else the stored one."""
    item = view[side].remote
    if item is not None:
        return item.etag
    return pair.caldav_etag if side is Side.CALDAV else None


def _update(pair: PairState, view: View, target: Side, event: Event, reason: str) -> Update:
    old = event_of(pair, view, target)
    return Update(
        target=target,
        uid=pair.uid,
        target_id=_id(pair, view, target),
        etag=etag_of(pair, view, target),
        event=event,
        fields=changed_fields(old, event),
        pair=after(pair, view, event),
        reason=reason,
    )


def _id(pair: PairState, view: View, side: Side) -> str:
    item = view[side].remote
    found = item.id if item is not None else pair_id(pair, side)
    if found is None:  # callers only address sides that hold an item
        raise ValueError(f"pair {pair.uid} has no {side} item")
    return found


def _one_changed(pair: PairState, src: Side, view: View, policy: Policy) -> list[Action]:
    event = event_of(pair, view, src)
    assert event is not None  # a changed side was read
    if policy.writes_to(src.other):
        return [_update(pair, view, src.other, event, f"changed on {src}")]
    # one-way binding, the mirror was edited: revert it to the source's version
    source = event_of(pair, view, src.other)
    if source is None:
        return [Skip(pair.uid, "one-way mirror edited and no base to revert to", src)]
    return [_update(pair, view, src, source, "revert edit of one-way mirror")]


def _one_gone(pair: PairState, gone: Side, view: View, policy: Policy) -> list[Action]:
    other = gone.other
    if view[other].kind in _CHANGED or view[gone].kind is Kind.MISSING:
        event = event_of(pair, view, other)
        if event is None or not policy.writes_to(gone):
            # one-way source deleted while the mirror was edited: let the edited copy go
            return [Forget(pair.uid, f"deleted on {gone}, edited copy on {other} kept")]
        template = with_side(after(pair, view, event), gone, None, None, None)
        return [Create(gone, pair.uid, event, template, f"edited on {other}, deleted on {gone}")]
    if policy.writes_to(other):
        etag = etag_of(pair, view, other)
        return [Delete(other, pair.uid, _id(pair, view, other), etag, f"deleted on {gone}")]
    # one-way binding, the mirror copy was deleted: restore it from the source
    event = event_of(pair, view, other)
    if event is None:
        return [Forget(pair.uid, f"deleted on {gone}, nothing to restore")]
    template = with_side(after(pair, view, event), gone, None, None, None)
    return [Create(gone, pair.uid, event, template, "restore deleted one-way mirror copy")]


def _both_changed(pair: PairState, view: View, policy: Policy, now: datetime) -> list[Action]:
    d = event_of(pair, view, Side.DINGTALK)
    c = event_of(pair, view, Side.CALDAV)
    assert d is not None
    assert c is not None
    if d.fingerprint() == c.fingerprint():
        return [Record(after(pair, view, d), "same edit on both sides")]
    if policy.source is not None:  # one-way: the source wins, the mirror is reverted
        src = policy.source
        winner = d if src is Side.DINGTALK else c
        return [_update(pair, view, src.other, winner, "revert edit of one-way mirror")]
    return reconcile_versions(pair, view, d, c, policy, now)


def reconcile_versions(
    pair: PairState, view: View, d: Event, c: Event, policy: Policy, now: datetime
) -> list[Action]:
    """Merge two differing versions; conflicts are recorded and decided by the policy."""
    result = merge(pair.base, d, c, policy.conflict, uid=pair.uid)
    actions: list[Action] = []
    if result.conflicts:
        record = ConflictRecord(
            uid=pair.uid,
            fields=result.conflicts,
            dingtalk=d,
            caldav=c,
            base=pair.base,
            winner=result.winner,
            decided_at=now.isoformat(),
        )
        actions.append(Conflict(record))
    merged_fp = result.event.fingerprint()
    for side, mine in ((Side.DINGTALK, d), (Side.CALDAV, c)):
        if mine.fingerprint() != merged_fp:
            actions.append(_update(pair, view, side, result.event, "merged"))
    return actions


def _refresh(pair: PairState, view: View) -> list[Action]:
    fresh = after(pair, view, pair.base)
    if fresh == pair:
        return []  # nothing changed anywhere (or only echoes of our own writes)
    return [Record(fresh, "ids or etags changed, content did not")]
