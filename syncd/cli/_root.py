"""The root command group, the options every subcommand shares, and error handling."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar

import click

from syncd.config import Config, load_config
from syncd.errors import ConfigError, SyncdError
from syncd.observability import configure_logging

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes of CONTRACT.md.
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2

SUBCOMMAND_MODULES = ("check", "serve", "ops", "directory")

# Entry-point group through which other installed packages add subcommands (the lab
# package adds `demo` and `sandbox`); syncd itself never imports them.
PLUGIN_GROUP = "syncd.commands"


def common_options(func: F) -> F:
    """``--config DIR`` (env SYNCD_CONFIG) and ``--debug``, on every subcommand."""
    func = click.option(
        "--config",
        "config_dir",
        default="./config",
        envvar="SYNCD_CONFIG",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Directory holding syncd.yaml and tenants/*.yaml.",
    )(func)
    return click.option("--debug", is_flag=True, help="Tracebacks and debug logs.")(func)


def fail(exc: BaseException, debug: bool) -> None:
    """Turn an error into one readable stderr line and the contract's exit code."""
    if debug:
        raise exc
    code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUNTIME
    if isinstance(exc, ConfigError):
        for line in exc.problems:
            click.echo(line, err=True)
    else:
        name = type(exc).__name__
        click.echo(
            f"syncd: {name}: {exc}" if isinstance(exc, SyncdError) else f"syncd: {exc}", err=True
        )
    sys.exit(code)


class PluginGroup(click.Group):
    """The root group plus the commands registered under :data:`PLUGIN_GROUP`.

    A plugin's module is imported only when its command is listed (``--help``) or run;
    one that fails to load costs one stderr line and is left out, the rest still work.
    """

    def _plugins(self) -> dict[str, EntryPoint]:
        return {name: ep for name, ep in _plugin_entries().items() if name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        entry = None if command else self._plugins().get(cmd_name)
        return _load_plugin(entry) if entry else command


@functools.cache
def _plugin_entries() -> dict[str, EntryPoint]:
    """The installed ``syncd.commands`` entry points by name (read once per process)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _load_plugin(entry: EntryPoint) -> click.Command | None:
    """The click command ``entry`` names, or None (with one stderr line) if it is broken."""
    try:
        command = entry.load()
    except Exception as exc:  # a broken plugin must not take the other commands down
        click.echo(f"syncd: plugin command {entry.name!r} ({entry.value}): {exc}", err=True)
        return None
    if not isinstance(command, click.Command):
        click.echo(f"syncd: plugin {entry.name!r} ({entry.value}) is not a command", err=True)
        return None
    return command


@click.group(cls=PluginGroup)
@click.version_option(package_name="syncd")
def main() -> None:
    """syncd: keeps DingTalk Calendar and CalDAV calendars in agreement."""


def load(config_dir: str, debug: bool, *, skip_invalid_tenants: bool = False) -> Config:
    """Load configuration for a command, or exit 2 with every problem on its own line.

    Logging goes to stderr (warnings only, unless --debug) until :func:`setup_logging`
    applies the configured format, so stdout carries nothing but a command's results.
    """
    configure_logging("console", "debug" if debug else "warning")
    try:
        return load_config(Path(config_dir), os.environ, skip_invalid_tenants=skip_invalid_tenants)
    except ConfigError as exc:
        fail(exc, debug)
        raise  # unreachable: fail() exits


def setup_logging(config: Config, debug: bool) -> None:
    """Logging as configured (debug level with --debug)."""
    log = config.settings.log
    configure_logging(log.format, "debug" if debug else log.level)


def register_subcommands() -> None:
    """Import every subcommand module so it registers itself on :data:`main`."""
    for _name in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(f"syncd.cli.{_name}")
        except ModuleNotFoundError as exc:  # a subcommand module not written yet
            if exc.name != f"syncd.cli.{_name}":
                raise
