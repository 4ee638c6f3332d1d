"""The pure sync planner: stored pairs + both sides' changes + policy -> a plan of actions.

Nothing here awaits or does I/O; :mod:`syncd.reconcile` reads the sides, calls :func:`make_plan`
and applies the result through the ports in :mod:`syncd.sync.ports`.
"""

from syncd.sync.engine import make_plan
from syncd.sync.merge import MergeResult, changed_fields, merge, winner
from syncd.sync.plan import (
    Action,
    Conflict,
    Counts,
    Create,
    Delete,
    Forget,
    Plan,
    Record,
    Skip,
    Update,
    Write,
    settle,
)
from syncd.sync.policy import Policy

__all__ = [
    "Action",
    "Conflict",
    "Counts",
    "Create",
    "Delete",
    "Forget",
    "MergeResult",
    "Plan",
    "Policy",
    "Record",
    "Skip",
    "Update",
    "Write",
    "changed_fields",
    "make_plan",
    "merge",
    "settle",
    "winner",
]
