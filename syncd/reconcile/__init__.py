"""The reconcile runner: applies the pure planner's decisions through the ports.

It knows only :class:`~syncd.sync.ports.CalendarSide` and
:class:`~syncd.sync.ports.MappingStore`; the worker and the CLI hand it real adapters, the
tests hand it in-memory ones.
"""

from syncd.reconcile._apply import Progress
from syncd.reconcile._report import ActionError, Disposition, Report, disposition
from syncd.reconcile._runner import reconcile
from syncd.reconcile._siblings import WithoutForeign, owned_elsewhere

__all__ = [
    "ActionError",
    "Disposition",
    "Progress",
    "Report",
    "WithoutForeign",
    "disposition",
    "owned_elsewhere",
    "reconcile",
]
