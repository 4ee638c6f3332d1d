"""The pure planner: stored pairs + what both sides report + policy -> a :class:`Plan`.

No ``await``, no I/O, no clock unless the caller passes none (``now``). The algorithm is
vdirsyncer's three-way status sync with fingerprints instead of etags (docs/design.md):

1. match each side's items to pairs (DingTalk by id; CalDAV by href, then by UID: a move);
2. refuse a complete listing that came back empty while pairs exist (``SourceEmptied``);
3. decide each pair with the three-way table in :mod:`syncd.sync._decide`;
4. reclaim or copy the items no pair knows (:mod:`syncd.sync._unpaired`: by UID, by
   fingerprint, or by what DingTalk keeps of a CalDAV event, ``Policy.dingtalk_keeps``);
5. hold deletions above the binding's threshold (reported, not executed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from syncd.errors import SourceEmptied
from syncd.model import Changes, PairState, Side
from syncd.sync._decide import decide
from syncd.sync._match import SideMatch, match_side, seen
from syncd.sync._unpaired import plan_unpaired
from syncd.sync.plan import Action, Delete, Plan, pair_id
from syncd.sync.policy import Policy

log = structlog.get_logger(__name__)


def make_plan(
    pairs: Mapping[str, PairState],
    dingtalk: Changes,
    caldav: Changes,
    policy: Policy,
    *,
    now: datetime | None = None,
    paired: int | None = None,
) -> Plan:
    """Decide what brings both sides back into agreement.

    ``pairs`` are the stored pairs keyed by uid; ``dingtalk`` and ``caldav`` what each side
    reported since its cursor (or in full). ``now`` stamps recorded conflicts. For an
    incremental run ``pairs`` may be just the pairs the changes touch plus those lacking a
    side (:meth:`~syncd.sync.ports.MappingStore.load_touched`), with ``paired`` the
    binding's number of pairs (the deletion threshold's base); a complete listing needs
    every pair.
    Raises :class:`~syncd.errors.SourceEmptied` when a complete listing is empty while
    pairs exist on that side, unless ``policy.force_delete``.
    """
    changes = {Side.DINGTALK: dingtalk, Side.CALDAV: caldav}
    for side, listing in changes.items():
        _check_emptied(side, listing, pairs, policy)
    matches = {side: match_side(side, listing, pairs) for side, listing in changes.items()}
    stamp = now or datetime.now(UTC)
    actions: list[Action] = []
    for side in Side:
        actions += matches[side].skips
    for uid in sorted(_touched(pairs, matches)):
        view = {side: seen(pairs[uid], side, matches[side]) for side in Side}
        actions += decide(pairs[uid], view, policy, stamp)
    unpaired = (matches[Side.DINGTALK].unpaired, matches[Side.CALDAV].unpaired)
    actions += plan_unpaired(*unpaired, policy, stamp)
    total = len(pairs) if paired is None else paired
    kept, held, warnings = _hold_deletions(actions, total, policy)
    return Plan(tuple(kept), held, warnings)


def _touched(pairs: Mapping[str, PairState], matches: Mapping[Side, SideMatch]) -> set[str]:
    """Pairs something was reported about, or lacking a side; the rest stay as they are."""
    out = {uid for uid, p in pairs.items() if p.dingtalk_id is None or p.caldav_href is None}
    for match in matches.values():
        out.update(match.hits.keys() | match.gone)
    return out


def _check_emptied(
    side: Side, listing: Changes, pairs: Mapping[str, PairState], policy: Policy
) -> None:
    """Safety rule: an empty full listing is a failed read, not "everything was deleted"."""
    if not listing.complete or listing.items or policy.force_delete:
        return
    mapped = sum(
        1 for p in pairs.values() if pair_id(p, side) is not None and listing.covers(p.base)
    )
    if mapped:
        log.warning("source_emptied", side=str(side), mapped=mapped)
        raise SourceEmptied(
            f"{side} listed no events while {mapped} are mapped; "
            "refusing to delete them on the other side (force_delete overrides)"
        )


def _hold_deletions(
    actions: list[Action], paired: int, policy: Policy
) -> tuple[list[Action], tuple[Delete, ...], tuple[str, ...]]:
    """Safety rule: too many deletions on one side are held back and reported."""
    held: list[Delete] = []
    warnings: list[str] = []
    for side in Side:
        deletes = [a for a in actions if isinstance(a, Delete) and a.target is side]
        if policy.force_delete or not _too_many(len(deletes), paired, policy):
            continue
        held += deletes
        warnings.append(
            f"{len(deletes)} deletions on {side} of {paired} pairs exceed the threshold "
            f"({policy.max_deletions} and {policy.max_deletion_ratio:.0%}); held, not executed"
        )
        log.warning("deletions_held", side=str(side), count=len(deletes), pairs=paired)
    held_ids = {id(d) for d in held}
    kept = [a for a in actions if id(a) not in held_ids]
    return kept, tuple(held), tuple(warnings)


def _too_many(count: int, paired: int, policy: Policy) -> bool:
    return count > policy.max_deletions and count > policy.max_deletion_ratio * paired
