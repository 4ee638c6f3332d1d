"""How healthy a binding is, and the one line ``syncd status`` prints for it.

Kept in :mod:`syncd.store.health` (the web process's ``/status`` and ``/metrics`` decide
health the same way); re-exported here for the CLI.
"""

from syncd.store.health import UNHEALTHY, binding_health, status_line

__all__ = ["UNHEALTHY", "binding_health", "status_line"]
