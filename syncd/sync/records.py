"""Typed records the mapping store keeps besides pairs: a binding's run status, dead letters.

Like :class:`~syncd.sync.ports.ConflictRecord`, they are frozen values; their stored
form (JSON) is :mod:`syncd.store.codec`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

NEVER_RUN: Final = "never-run"
"""The state of a binding no run has recorded a status for."""

RunState = Literal["never-run", "ok", "held", "partial", "failed", "blocked"]
"""ok: all applied; held: deletions held; partial: some actions failed;
failed: the run could not read (or write its store); blocked: the planner refused."""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """The recorded outcome of a binding's runs, as ``syncd status`` shows it.

    Stored merged: a run records the fields it sets (those not None) and leaves the
    others as an earlier run left them, so a failed run keeps the last success's time and
    counts. ``state`` is :data:`NEVER_RUN` until a run records one.
    """

    state: RunState = NEVER_RUN
    last_run: str | None = None  # ISO-8601 UTC
    last_success: str | None = None  # ISO-8601 UTC
    last_error: str | None = None  # "ErrorClass: message" of the last failed run
    duration: float | None = None  # seconds
    full: bool | None = None
    cursors_committed: bool | None = None
    pairs_before: int | None = None
    counts: Mapping[str, int] | None = None
    per_side: Mapping[str, Mapping[str, int]] | None = None
    errors: tuple[Mapping[str, Any], ...] | None = None  # failed actions (ActionError.as_dict)
    held_deletions: tuple[str, ...] | None = None
    warnings: tuple[str, ...] | None = None


DeadLetterKind = Literal["binding", "item"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Work that failed for good; it waits for ``syncd replay`` or a run that heals it.

    ``binding``: a whole reconcile failed (``reason`` it was queued for, after ``tries``
    tries; ``error`` is ``"ErrorClass: message"``). ``item``: one action could not be
    written (``uid``, the ``side`` written, the ``action``; ``error`` is the error class,
    ``message`` its text). ``at`` is when it was recorded (ISO-8601 UTC).
    """

    kind: DeadLetterKind
    error: str
    at: str
    reason: str | None = None
    tries: int | None = None
    uid: str | None = None
    side: str | None = None
    action: str | None = None
    message: str | None = None
    disposition: str | None = None

    @classmethod
    def of_binding(cls, reason: str, error: BaseException, tries: int, at: str) -> DeadLetter:
        """The letter of a reconcile job that failed for good."""
        return cls("binding", f"{type(error).__name__}: {error}", at, reason=reason, tries=tries)

    def reason_line(self) -> str:
        """One line for ``syncd status``: the error, and the item's message when it has one."""
        if self.uid is not None:
            return f"{self.uid}: {self.error}: {self.message}"
        return self.error
