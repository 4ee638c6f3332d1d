"""Items no pair knows: reclaim them across sides, or copy them over.

An item new on one side is first matched against the other side's new items, so that a
lost mapping store or a first sync into a calendar that already holds the events creates
no duplicates: by UID (events born in DingTalk carry a UID derived from their id, and their
CalDAV copies keep it), then by fingerprint (copies made in DingTalk of CalDAV events cannot
carry a UID, but hold the same content), then by what DingTalk keeps of a CalDAV event
(``Policy.dingtalk_keeps``: a DingTalk copy of a CalDAV event that DingTalk cannot hold
whole, with privacy, external attendees, another organizer, ...). A couple with the same
content is only recorded; so is a DingTalk item holding exactly what DingTalk keeps of a
CalDAV item (the CalDAV event is the base, DingTalk's copy what DingTalk holds: as if syncd
had just copied it). One with the same UID and different content is merged like any pair
edited on both sides (without a base, so every differing field is a conflict decided by
the policy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime

import structlog

from syncd.errors import SyncdError
from syncd.model import Event, PairState, Remote, Side
from syncd.sync._decide import decide
from syncd.sync._match import Kind, Seen, is_gone
from syncd.sync.plan import Action, Create, Record, Skip, with_held, with_side
from syncd.sync.policy import Policy, Projection

log = structlog.get_logger(__name__)


def plan_unpaired(
    dingtalk: Iterable[Remote], caldav: Iterable[Remote], policy: Policy, now: datetime
) -> list[Action]:
    """Actions for the items of both sides that match no stored pair."""
    actions: list[Action] = []
    live: dict[Side, dict[str, Remote]] = {}
    for side, items in ((Side.DINGTALK, dingtalk), (Side.CALDAV, caldav)):
        live[side], skips = _usable(side, items)
        actions += skips
    couples = _couples(live[Side.DINGTALK], live[Side.CALDAV], _copy_fp(policy))
    for d, c in couples:
        actions += _couple(d, c, policy, now)
    keeps = _keeps(policy)
    if keeps is not None:
        for d, c in _kept_copies(live[Side.DINGTALK], live[Side.CALDAV], keeps):
            actions.append(_record_copy(d, c))
    for side in Side:
        for item in live[side].values():
            actions.append(_copy(side, item, policy))
    return actions


def _usable(side: Side, items: Iterable[Remote]) -> tuple[dict[str, Remote], list[Skip]]:
    """Translatable, not cancelled, one item per UID (the first by id wins)."""
    by_uid: dict[str, Remote] = {}
    skips: list[Skip] = []
    for item in sorted(items, key=lambda r: r.id):
        if item.event is None:
            skips.append(Skip(item.id, f"untranslatable: {item.error or 'unknown'}", side))
        elif is_gone(item):
            continue  # a tombstone of something we never paired: nothing to do
        elif item.event.uid in by_uid:
            reason = f"duplicate uid {item.event.uid} (kept {by_uid[item.event.uid].id})"
            skips.append(Skip(item.id, reason, side))
        else:
            by_uid[item.event.uid] = item
    return by_uid, skips


def _copy_fp(policy: Policy) -> Callable[[Remote], str]:
    """The fingerprint of what a CalDAV item's DingTalk copy holds (its shaping applied)."""
    shaping = policy.shaping
    if not shaping.transforms:
        return _fp

    def copied(item: Remote) -> str:
        assert item.event is not None
        return shaping.out(item.event).fingerprint()

    return copied


def _keeps(policy: Policy) -> Projection | None:
    """What DingTalk keeps of a CalDAV event once shaped and copied there."""
    keeps, shaping = policy.dingtalk_keeps, policy.shaping
    if keeps is None or not shaping.transforms:
        return keeps
    return lambda event: keeps(shaping.out(event))


def _couples(
    dingtalk: dict[str, Remote], caldav: dict[str, Remote], copied: Callable[[Remote], str]
) -> list[tuple[Remote, Remote]]:
    """Match new items across sides (removing them from the dicts): by UID, then content
    (a DingTalk item holding what syncd would have copied there of a CalDAV item)."""
    couples = [(dingtalk.pop(uid), caldav.pop(uid)) for uid in sorted(dingtalk.keys() & caldav)]
    by_fp: dict[str, list[str]] = {}
    for uid, item in sorted(caldav.items(), key=lambda kv: kv[1].id):
        by_fp.setdefault(copied(item), []).append(uid)
    for uid, item in sorted(dingtalk.items(), key=lambda kv: kv[1].id):
        waiting = by_fp.get(_fp(item))
        if waiting:
            couples.append((dingtalk.pop(uid), caldav.pop(waiting.pop(0))))
    return couples


def _kept_copies(
    dingtalk: dict[str, Remote], caldav: dict[str, Remote], keeps: Projection
) -> list[tuple[Remote, Remote]]:
    """Match DingTalk items holding exactly what DingTalk keeps of a CalDAV item."""
    by_fp: dict[str, list[str]] = {}
    for uid, item in sorted(caldav.items(), key=lambda kv: kv[1].id):
        assert item.event is not None
        kept = _kept_fp(item.event, keeps)
        if kept is not None:
            by_fp.setdefault(kept, []).append(uid)
    couples = []
    for uid, item in sorted(dingtalk.items(), key=lambda kv: kv[1].id):
        assert item.event is not None
        waiting = by_fp.get(_unanswered(item.event))
        if waiting:
            couples.append((dingtalk.pop(uid), caldav.pop(waiting.pop(0))))
    return couples


def _holds_kept(dingtalk: Event, caldav: Event, keeps: Projection | None) -> bool:
    """Whether ``dingtalk`` is exactly what DingTalk keeps of ``caldav`` (answers aside)."""
    if keeps is None or dingtalk.fingerprint() == caldav.fingerprint():
        return False
    return _kept_fp(caldav, keeps) == _unanswered(dingtalk)


def _kept_fp(caldav: Event, keeps: Projection) -> str | None:
    """The fingerprint (answers aside) of what DingTalk keeps of ``caldav``; None when the
    projection fails (then nothing matches by it)."""
    try:
        return _unanswered(keeps(caldav))
    except (SyncdError, ValueError) as exc:
        log.info("projection_failed", uid=caldav.uid, error=f"{type(exc).__name__}: {exc}")
        return None


def _unanswered(event: Event) -> str:
    """The fingerprint of ``event`` without its attendees' answers.

    Other attendees' answers are theirs to give in DingTalk (a copy starts with none), so
    they are the one thing the CalDAV event cannot tell about its DingTalk copy.
    """
    people = tuple(dataclasses.replace(a, partstat="needs-action") for a in event.attendees)
    return dataclasses.replace(event, attendees=people).fingerprint()


def _record_copy(d: Remote, c: Remote, origin: Side = Side.CALDAV) -> Record:
    """The pair of a CalDAV event and its DingTalk copy, as syncd records it after copying
    (the CalDAV event is the base; DingTalk holds what it keeps of it)."""
    assert d.event is not None
    assert c.event is not None
    pair = PairState(c.event.uid, None, None, None, None, None, c.event, origin)
    pair = with_side(pair, Side.CALDAV, c.id, c.event.fingerprint(), c.etag)
    pair = with_side(pair, Side.DINGTALK, d.id, d.event.fingerprint(), d.etag)
    held = dataclasses.replace(d.event, uid=c.event.uid)
    return Record(with_held(pair, Side.DINGTALK, held), "re-paired with its DingTalk copy")


def _fp(item: Remote) -> str:
    assert item.event is not None  # only usable items get here
    return item.event.fingerprint()


def _couple(d: Remote, c: Remote, policy: Policy, now: datetime) -> list[Action]:
    """A new pair from two items found to be one event; decided as if both sides changed,
    unless DingTalk's item holds what DingTalk keeps of the CalDAV one (then recorded)."""
    assert d.event is not None
    assert c.event is not None
    origin = Side.DINGTALK if d.event.uid == c.event.uid else Side.CALDAV
    if _holds_kept(d.event, c.event, _keeps(policy)):
        return [_record_copy(d, c, origin)]
    pair = PairState(c.event.uid, d.id, c.id, None, None, c.etag, None, origin)
    view = {Side.DINGTALK: Seen(Kind.CHANGED, d), Side.CALDAV: Seen(Kind.CHANGED, c)}
    return decide(pair, view, policy, now)


def _copy(side: Side, item: Remote, policy: Policy) -> Action:
    """Copy a new item to the other side (or leave it, on a one-way mirror)."""
    assert item.event is not None
    if not policy.writes_to(side.other):
        return Skip(item.id, f"one-way binding: items created on {side} stay there", side)
    event = item.event
    filtered = policy.shaping.rejection(event)
    if filtered is not None:
        return Skip(item.id, filtered, side)  # stays on its side, never copied
    pair = PairState(event.uid, None, None, None, None, None, event, side)
    pair = with_side(pair, side, item.id, event.fingerprint(), item.etag)
    return Create(side.other, event.uid, policy.shaping.out(event), pair, f"new on {side}")
