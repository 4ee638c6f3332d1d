"""How one binding resolves what the planner finds: direction, conflicts, deletion safety.

A :class:`Policy` is built once from the tenant configuration (at the edge) and handed to
:func:`syncd.sync.make_plan` unchanged; the planner reads nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from syncd.model import ConflictPolicy, Direction, Event, Side
from syncd.sync.shaping import Shaping

Projection = Callable[[Event], Event]


@dataclass(frozen=True, slots=True)
class Policy:
    """The decisions a binding has made in advance.

    ``direction``: ``both``, or one way (``to_caldav``: DingTalk is the source of truth;
    ``to_dingtalk``: CalDAV is). In a one-way binding the target is a mirror: edits and
    deletions made on the mirror copy are reverted on the next run, items created on the
    target by its user are left alone, and an item deleted on the source but edited on the
    mirror is let go (the pair is forgotten, the edited copy stays).

    ``conflict``: who wins a field changed differently on both sides (``newest`` compares
    :attr:`Event.updated`; a tie or an unknown time goes to DingTalk).

    Deletions planned on one side are held (reported, not executed) when they number more
    than ``max_deletions`` *and* more than ``max_deletion_ratio`` of the mapped pairs,
    unless ``force_delete`` is set; ``force_delete`` also allows acting on a full listing
    that came back empty while pairs exist.

    ``dingtalk_keeps`` is what DingTalk holds of a CalDAV event once syncd wrote it there
    (``syncd.translate.as_dingtalk_keeps`` with the binding's context, built at the edge):
    with it, unpaired items are re-paired exactly even when DingTalk's copy could not hold
    every field of the CalDAV event. None: only UIDs and equal fingerprints re-pair.

    ``shaping`` is the binding's filter and transforms (busy mirror, summary prefix),
    applied to every pair's copy (the side that is not the pair's origin): see
    :mod:`syncd.sync.shaping` and :mod:`syncd.sync._lens`.
    """

    direction: Direction = "both"
    conflict: ConflictPolicy = "newest"
    max_deletions: int = 20
    max_deletion_ratio: float = 0.5
    force_delete: bool = False
    dingtalk_keeps: Projection | None = None
    shaping: Shaping = field(default_factory=Shaping)

    def writes_to(self, side: Side) -> bool:
        """Whether this binding may write to ``side``."""
        if self.direction == "both":
            return True
        return (self.direction == "to_caldav") == (side is Side.CALDAV)

    @property
    def source(self) -> Side | None:
        """The source of truth of a one-way binding; None when two-way."""
        if self.direction == "to_caldav":
            return Side.DINGTALK
        if self.direction == "to_dingtalk":
            return Side.CALDAV
        return None
