"""The ``syncd`` command line: the only place that reads argv and sets up logging.

Each subcommand lives in its own module and registers itself on :data:`main` when the
group first needs it (:class:`syncd.cli._root.LazyGroup`).
"""

from syncd.cli._root import main

__all__ = ["main"]
