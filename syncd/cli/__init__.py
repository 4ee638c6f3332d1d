"""The ``syncd`` command line: the only place that reads argv and sets up logging.

Each subcommand lives in its own module and registers itself on :data:`main`.
"""

from syncd.cli._root import main, register_subcommands

register_subcommands()

__all__ = ["main"]
