"""What one reconcile did: counts per side, failures, held deletions, the plan itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from syncd.errors import (
    InvalidRequest,
    PermissionDenied,
    Retryable,
    SyncdError,
    TranslationError,
)
from syncd.model import BindingRef, Side
from syncd.sync import Counts, Delete, Plan
from syncd.sync.records import DeadLetter, RunState, RunStatus

# What a failed action means for the run:
#   retry       transient (Retryable): cursors stay, the caller should run again soon;
#   reread      the world moved (EtagMismatch, NotFound, auth, bad answers): cursors stay,
#               the next run re-reads and re-decides that pair;
#   dead_letter the item itself cannot be written (TranslationError, InvalidRequest,
#               PermissionDenied): a dead letter is stored, cursors may advance, a full
#               reconcile tries again (never a hot loop on an item we may not write).
Disposition = Literal["retry", "reread", "dead_letter"]


def disposition(exc: SyncdError) -> Disposition:
    """How a failed action affects cursors and retries (see the module comment)."""
    if isinstance(exc, Retryable):
        return "retry"
    if isinstance(exc, TranslationError | InvalidRequest | PermissionDenied):
        return "dead_letter"
    return "reread"


@dataclass(frozen=True, slots=True)
class ActionError:
    """One action that failed: what it was, what went wrong, and what that means."""

    uid: str
    side: Side | None
    action: str
    error: str
    message: str
    disposition: Disposition

    @property
    def retryable(self) -> bool:
        return self.disposition == "retry"

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping, for dead letters and status records."""
        return {
            "uid": self.uid,
            "side": str(self.side) if self.side else None,
            "action": self.action,
            "error": self.error,
            "message": self.message,
            "disposition": self.disposition,
        }

    def dead_letter(self, at: str) -> DeadLetter:
        """The item-level dead letter of this failure, recorded ``at``."""
        side = str(self.side) if self.side else None
        return DeadLetter(
            "item",
            self.error,
            at,
            uid=self.uid,
            side=side,
            action=self.action,
            message=self.message,
            disposition=self.disposition,
        )


def _zero() -> dict[Side, Counts]:
    return {Side.DINGTALK: Counts(), Side.CALDAV: Counts()}


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one reconcile of one binding.

    ``per_side`` counts what was applied (for a dry run: what is planned), per side
    written; ``errors`` holds every failed action; ``cursors_committed`` says whether the
    run advanced the cursors (it does not while anything read is still unapplied);
    ``dingtalk_listed`` whether it listed DingTalk (a quiet run, with nothing to write to
    DingTalk and no DingTalk push to serve, does not).
    """

    ref: BindingRef
    plan: Plan
    duration: float
    per_side: Mapping[Side, Counts] = field(default_factory=_zero)
    errors: tuple[ActionError, ...] = ()
    dry_run: bool = False
    full: bool = False
    cursors_committed: bool = False
    dingtalk_listed: bool = True

    @property
    def counts(self) -> Counts:
        """Counts over both sides."""
        return self.per_side[Side.DINGTALK] + self.per_side[Side.CALDAV]

    @property
    def held_deletions(self) -> tuple[Delete, ...]:
        return self.plan.held_deletions

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.plan.warnings

    @property
    def retryable(self) -> bool:
        """Whether some action failed in a way worth retrying soon."""
        return any(e.retryable for e in self.errors)

    @property
    def ok(self) -> bool:
        """No failed action and nothing held."""
        return not self.errors and not self.held_deletions

    def summary_line(self) -> str:
        """``TENANT/BINDING: created=N updated=N deleted=N conflicts=N duration=S.SSSs``."""
        c = self.counts
        line = (
            f"{self.ref}: created={c.created} updated={c.updated} deleted={c.deleted} "
            f"conflicts={c.conflicts} duration={self.duration:.3f}s"
        )
        extras = [f"skipped={c.skipped}"] if c.skipped else []
        extras += [f"errors={len(self.errors)}"] if self.errors else []
        extras += [f"held={len(self.held_deletions)}"] if self.held_deletions else []
        return " ".join([line, *extras])

    def status(self, finished_at: str, pairs_before: int | None = None) -> RunStatus:
        """What :meth:`MappingStore.set_status` records for this run."""
        state: RunState = "ok" if self.ok else ("held" if not self.errors else "partial")
        return RunStatus(
            state=state,
            last_run=finished_at,
            last_success=finished_at if self.ok else None,
            duration=round(self.duration, 3),
            full=self.full,
            cursors_committed=self.cursors_committed,
            pairs_before=pairs_before,
            counts=self.counts.as_dict(),
            per_side={str(s): c.as_dict() for s, c in self.per_side.items()},
            errors=tuple(e.as_dict() for e in self.errors),
            held_deletions=tuple(d.describe() for d in self.held_deletions),
            warnings=tuple(self.warnings),
        )
