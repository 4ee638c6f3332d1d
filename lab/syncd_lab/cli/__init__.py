"""The lab's subcommands of ``syncd``, registered as ``syncd.commands`` entry points."""
