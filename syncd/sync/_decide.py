"""The three-way decision for one mapped pair (vdirsyncer's table, one line per case).

==========  ==========  =============================================================
DingTalk    CalDAV      decision
==========  ==========  =============================================================
broken      any         skip: an untranslatable item is never deleted nor overwritten
origin no longer passes the binding's filter: delete the copy syncd made (reason
                        ``filtered: ...``), or forget the pair when the copy is gone
gone        gone        forget the pair
gone        changed     the edit wins: re-create on DingTalk, pair repointed
gone        unchanged   delete on CalDAV, if it still has the etag last seen (subject
                        to the deletion threshold)
changed     any         merge field by field, each side against what it held: fields
                        changed on one side are copied over, fields changed on both
                        sides differently are a recorded conflict; identical: record
unchanged   unchanged   record refreshed ids/etags if they moved, else nothing
==========  ==========  =============================================================

and the mirror images. "Unchanged" includes unseen (an incremental listing that does not
mention the item); "changed" means changed since the last sync, before or after the
deletion (neither side dates a deletion). In a one-way binding the source's version
always wins and the mirror is reverted (see :class:`~syncd.sync.policy.Policy`).

Every update and delete is conditional on the etag the item had when last read or
written (:func:`etag_of`; DingTalk's is its ``updateTime``): a user's change landing
between this run's reads and its writes fails the write (``EtagMismatch``/``NotFound``),
the run keeps its cursors, and the next run decides again with the change in view, so
an edit racing a deletion still wins. Deletions above the threshold are held (reported,
not executed) by the planner after this table (:mod:`syncd.sync.engine`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from syncd.model import Event, PairState, Side
from syncd.sync import _lens
from syncd.sync._match import Kind, Seen
from syncd.sync.merge import changed_fields, effective, merge
from syncd.sync.plan import (
    Action,
    Conflict,
    Create,
    Delete,
    Forget,
    Record,
    Skip,
    Update,
    held_of,
    pair_etag,
    pair_id,
    rebased,
    with_held,
    with_side,
)
from syncd.sync.policy import Policy
from syncd.sync.ports import ConflictRecord
from syncd.sync.shaping import shows_details

View = dict[Side, Seen]
_ABSENT = {Kind.GONE, Kind.MISSING}


def decide(pair: PairState, view: View, policy: Policy, now: datetime) -> list[Action]:
    """The actions that bring ``pair`` back into agreement."""
    for side in Side:
        item = view[side].remote
        if view[side].kind is Kind.BROKEN and item is not None:
            return [Skip(pair.uid, f"untranslatable: {item.error or 'unknown error'}", side)]
    filtered = _filtered(pair, view, policy)
    if filtered is not None:
        return filtered
    gone = [s for s in Side if view[s].kind in _ABSENT]
    if len(gone) == 2:
        return [Forget(pair.uid)]
    if gone:
        return _one_gone(pair, gone[0], view, policy)
    if not any(view[s].kind is Kind.CHANGED for s in Side):
        return _reshape(pair, view, policy) or _refresh(pair, view)
    if policy.source is not None:
        return _one_way(pair, view, policy.source, policy)
    return _two_way(pair, view, policy, now)


def after(pair: PairState, view: View, base: Event | None) -> PairState:
    """``pair`` with the ids, fingerprints, etags and contents just read, and a new base."""
    out = rebased(pair, base)
    for side in Side:
        item = view[side].remote
        if item is not None and item.event is not None:
            out = with_side(out, side, item.id, item.event.fingerprint(), item.etag)
            out = with_held(out, side, item.event)
    return out


def event_of(pair: PairState, view: View, side: Side) -> Event | None:
    """``side``'s current version of the pair's event (what it held, when not read)."""
    item = view[side].remote
    event = item.event if item is not None and item.event is not None else held_of(pair, side)
    return dataclasses.replace(event, uid=pair.uid) if event is not None else None


def etag_of(pair: PairState, view: View, side: Side) -> str | None:
    """The etag to write ``side`` under: the one just read, else the stored one.

    Never None for an item syncd read or wrote before (unless its server keeps no etags),
    so a change made after the listing fails the write (``EtagMismatch``) and the next
    run sees it: an edit racing a deletion is never deleted blindly.
    """
    item = view[side].remote
    if item is not None:
        return item.etag
    return pair_etag(pair, side)


def _id(pair: PairState, view: View, side: Side) -> str:
    item = view[side].remote
    found = item.id if item is not None else pair_id(pair, side)
    if found is None:  # callers only address sides that hold an item
        raise ValueError(f"pair {pair.uid} has no {side} item")
    return found


def _update(
    pair: PairState,
    view: View,
    target: Side,
    canonical: Event,
    fields: tuple[str, ...],
    why: str,
    policy: Policy,
) -> Update:
    """Write ``target`` to hold ``canonical`` (shaped for it, when it holds the copy)."""
    return Update(
        target=target,
        uid=pair.uid,
        target_id=_id(pair, view, target),
        etag=etag_of(pair, view, target),
        event=_lens.shaped(policy, pair, target, canonical),
        fields=fields,
        pair=after(pair, view, canonical),
        reason=why,
    )


def _create(
    pair: PairState, view: View, target: Side, canonical: Event, why: str, policy: Policy
) -> Create:
    """Re-create the pair's item on ``target`` (shaped for it), the pair repointed."""
    template = with_side(after(pair, view, canonical), target, None, None, None)
    event = _lens.shaped(policy, pair, target, canonical)
    return Create(target, pair.uid, event, template, why)


def canonical_of(pair: PairState, view: View, side: Side, policy: Policy) -> Event | None:
    """``side``'s current version in canonical terms (see :mod:`syncd.sync._lens`)."""
    return _lens.canon(policy, pair, side, event_of(pair, view, side), _ref(pair, view))


def _ref(pair: PairState, view: View) -> Event | None:
    return _lens.reference(pair, event_of(pair, view, pair.origin))


def _filtered(pair: PairState, view: View, policy: Policy) -> list[Action] | None:
    """The pair's origin no longer passes the filter: remove the copy, like a deletion."""
    origin, copy = pair.origin, pair.origin.other
    if not policy.shaping.filter.active or view[origin].kind in _ABSENT:
        return None
    event = event_of(pair, view, origin)
    why = policy.shaping.rejection(event) if event is not None else None
    if why is None:
        return None
    if view[copy].kind in _ABSENT:
        return [Forget(pair.uid, why)]
    if not policy.writes_to(copy):
        return [Skip(pair.uid, f"{why}; the one-way binding cannot remove its copy", copy)]
    return [Delete(copy, pair.uid, _id(pair, view, copy), etag_of(pair, view, copy), why)]


def _carried(pair: PairState, view: View, src: Side, policy: Policy) -> Event | None:
    """``src``'s edits carried onto what the other side held (base fields it lacks kept),
    in canonical terms."""
    ref = _ref(pair, view)
    src_event = canonical_of(pair, view, src, policy)
    other = _lens.canon(policy, pair, src.other, held_of(pair, src.other), ref)
    if src_event is None or other is None:
        return src_event
    events = {src: src_event, src.other: dataclasses.replace(other, uid=pair.uid)}
    held = {src: _lens.canon(policy, pair, src, held_of(pair, src), ref), src.other: other}
    return merge(
        pair.base, events[Side.DINGTALK], events[Side.CALDAV], "dingtalk", uid=pair.uid, held=held
    ).event


def _one_gone(pair: PairState, gone: Side, view: View, policy: Policy) -> list[Action]:
    other = gone.other
    if view[other].kind is Kind.CHANGED or view[gone].kind is Kind.MISSING:
        event = _carried(pair, view, other, policy)
        if event is None or not policy.writes_to(gone):
            # one-way source deleted while the mirror was edited: let the edited copy go
            return [Forget(pair.uid, f"deleted on {gone}, edited copy on {other} kept")]
        return [_create(pair, view, gone, event, f"edited on {other}, deleted on {gone}", policy)]
    if policy.writes_to(other):
        etag = etag_of(pair, view, other)
        return [Delete(other, pair.uid, _id(pair, view, other), etag, f"deleted on {gone}")]
    # one-way binding, the mirror copy was deleted: restore it from the source
    event = canonical_of(pair, view, other, policy)
    if event is None:
        return [Forget(pair.uid, f"deleted on {gone}, nothing to restore")]
    return [_create(pair, view, gone, event, "restore deleted one-way mirror copy", policy)]


def _one_way(pair: PairState, view: View, source: Side, policy: Policy) -> list[Action]:
    """One-way binding: the mirror gets the source's version, whoever changed."""
    mirror = source.other
    src, dst = canonical_of(pair, view, source, policy), event_of(pair, view, mirror)
    assert src is not None and dst is not None  # noqa: PT018 (both sides are present)
    dst = effective(mirror, dst, held_of(pair, mirror), pair.base)
    wanted = _lens.shaped(policy, pair, mirror, src)
    if _lens.shapes(policy, pair, mirror) and pair.base and view[mirror].kind is not Kind.CHANGED:
        # an unedited copy holds what syncd made of the base (as its side keeps it: a
        # DingTalk copy has an organizer a busy projection lacks), so compare with that
        dst = _lens.shaped(policy, pair, mirror, pair.base)
    if wanted.fingerprint() == dst.fingerprint():
        return [Record(after(pair, view, src), "same content on both sides")]
    why = (
        f"changed on {source}"
        if view[source].kind is Kind.CHANGED
        else "revert edit of one-way mirror"
    )
    return [_update(pair, view, mirror, src, changed_fields(dst, wanted), why, policy)]


def _two_way(pair: PairState, view: View, policy: Policy, now: datetime) -> list[Action]:
    """Merge both sides, each against what it held; write only the sides that need it."""
    raw = {side: event_of(pair, view, side) for side in Side}
    held = {
        side: held_of(pair, side) if view[side].kind is Kind.CHANGED else raw[side] for side in Side
    }
    ref = _ref(pair, view)
    events = {side: _lens.canon(policy, pair, side, raw[side], ref) for side in Side}
    held = {side: _lens.canon(policy, pair, side, held[side], ref) for side in Side}
    d, c = events[Side.DINGTALK], events[Side.CALDAV]
    assert d is not None and c is not None  # noqa: PT018 (both sides are present)
    result = merge(pair.base, d, c, policy.conflict, uid=pair.uid, held=held)
    writes = _lens.copy_writes(policy, pair, raw, result)
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
    changed = [s for s in Side if view[s].kind is Kind.CHANGED]
    why = f"changed on {changed[0]}" if len(changed) == 1 else "merged"
    for side in Side:
        if writes[side]:
            actions.append(_update(pair, view, side, result.event, writes[side], why, policy))
    if not actions:
        same = "same edit on both sides" if pair.base else "existing items matched, same content"
        actions.append(Record(after(pair, view, result.event), same))
    return actions


def _reshape(pair: PairState, view: View, policy: Policy) -> list[Action]:
    """A busy mirror's copy, read unchanged, that still shows its source's details (made
    before the binding became a busy mirror): rewritten as the projection."""
    copy, shaping = _lens.copy_side(pair), policy.shaping
    item = view[copy].remote
    if not shaping.mirror_busy or item is None or item.event is None or pair.base is None:
        return []
    if not policy.writes_to(copy) or not shows_details(item.event, pair.base, shaping.busy_title):
        return []
    wanted = _lens.shaped(policy, pair, copy, pair.base)
    fields = changed_fields(item.event, wanted)
    return [_update(pair, view, copy, pair.base, fields, "reshaped: busy mirror", policy)]


def _refresh(pair: PairState, view: View) -> list[Action]:
    """Neither side changed: record a moved href or a new etag, else nothing to do."""
    moved = False
    for side in Side:
        item = view[side].remote
        if item is not None:
            moved = moved or item.id != pair_id(pair, side)
            moved = moved or item.etag != pair_etag(pair, side)
    if not moved:
        return []  # nothing changed anywhere (or only echoes of our own writes)
    return [Record(after(pair, view, pair.base), "ids or etags changed, content did not")]
