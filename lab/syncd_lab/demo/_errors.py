"""The demo's one error class."""

from __future__ import annotations

from syncd.errors import SyncdError


class DemoFailed(SyncdError):
    """Raised when a demo step fails or times out: a child did not start, a change did not flow."""
