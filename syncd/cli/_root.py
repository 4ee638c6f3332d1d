"""The root command group, the options every subcommand shares, and error handling.

Start-up is kept short (``syncd --version`` imports click and little else): the group
imports a subcommand's module only when that command runs, and ``syncd --help`` lists
syncd's own commands from :data:`COMMANDS` without importing any of them. Other installed
packages add commands through the :data:`PLUGIN_GROUP` entry points (the lab adds
``demo`` and ``sandbox``), loaded only when listed or run. Heavy libraries
(aiohttp, arq, caldav, icalendar, pydantic) are imported inside the commands that use
them; ``tests/unit/test_cli_startup.py`` pins which modules each light command loads.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from syncd.errors import ConfigError, SyncdError

if TYPE_CHECKING:
    from syncd.config import Config

F = TypeVar("F", bound=Callable[..., Any])

_PASSWORD = re.compile(r"^([a-z+]+://[^:@/]*:)[^@]*@")  # scheme://user:PASSWORD@

# Exit codes (README.md "Running it").
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2

CONFIG_ENV = "SYNCD_CONFIG"
DEFAULT_CONFIG = "./config"

COMMANDS: dict[str, tuple[str, str]] = {
    "check": (
        "check",
        "Validate DIR/syncd.yaml and DIR/tenants/*.yaml; list every problem (exit 2).",
    ),
    "conflicts": ("ops", "Recorded conflicts with both versions and how they were decided."),
    "directory": (
        "directory",
        "The tenant's unionId <-> e-mail directory and the bindings its templates expand to.",
    ),
    "replay": (
        "ops",
        "Re-run dead-lettered jobs: queue a full reconcile of each binding that has any.",
    ),
    "run": ("serve", "Web and worker in one process (small installations and the demo)."),
    "schema": ("check", "Print the JSON Schema of a tenant file (of syncd.yaml with --settings)."),
    "status": (
        "ops",
        "Per binding: state, last success, lag, mapped pairs, open conflicts, dead letters.",
    ),
    "sync": ("ops", "One reconcile now, in the foreground, with progress."),
    "web": ("serve", "Serve the DingTalk callback webhook, health and metrics."),
    "worker": (
        "serve",
        "Run an arq worker: reconciles, polls, full reconciles, DingTalk Stream and failedResults.",
    ),
}
"""Each subcommand: the module of ``syncd.cli`` that defines it, and its short help
(the first paragraph of its docstring, which ``syncd --help`` shortens; a test checks
that it matches the command's own)."""

# Entry-point group through which other installed packages add subcommands (the lab
# package adds `demo` and `sandbox`); syncd itself never imports them.
PLUGIN_GROUP = "syncd.commands"

_CONFIG_HELP = (
    f"Directory holding syncd.yaml and tenants/*.yaml  [default: {DEFAULT_CONFIG}; "
    f"env: {CONFIG_ENV}]"
)
_DEBUG_HELP = "Tracebacks and debug logs."


class LazyGroup(click.Group):
    """A group whose own subcommands are imported only when named (:data:`COMMANDS`), plus
    the commands registered under :data:`PLUGIN_GROUP`.

    A plugin's module is imported only when its command is listed (``--help``) or run;
    one that fails to load costs one stderr line and is left out, the rest still work.
    The installed entry points are read only for a name that is not syncd's own.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"syncd.cli.{COMMANDS[cmd_name][0]}")  # registers itself
        command = self.commands.get(cmd_name)
        entry = None if command else self._plugins().get(cmd_name)
        return _load_plugin(entry) if entry else command

    def _plugins(self) -> dict[str, EntryPoint]:
        return {
            name: ep
            for name, ep in _plugin_entries().items()
            if name not in self.commands and name not in COMMANDS
        }

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click prints it; syncd's own from :data:`COMMANDS`, importing
        nothing, and each plugin's from its command (loading its small CLI module)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None and name in COMMANDS:
                command = click.Command(name, help=COMMANDS[name][1])  # shortened as click does
            elif command is None:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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


def resolve_common(config_dir: str | None, debug: bool) -> tuple[str, bool]:
    """``--config`` and ``--debug`` wherever they were typed: after the subcommand wins,
    then before it (``syncd --config DIR status``), then ``SYNCD_CONFIG``, then ./config.
    ``--debug`` is on when given in either place."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().params if ctx is not None else {}
    chosen = config_dir or root.get("config_dir") or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    return chosen, bool(debug or root.get("debug"))


def _shared_options(func: F) -> F:
    func = click.option(
        "--config",
        "config_dir",
        default=None,
        metavar="DIR",
        type=click.Path(file_okay=False),
        help=_CONFIG_HELP,
    )(func)
    return click.option("--debug", is_flag=True, help=_DEBUG_HELP)(func)


def common_options(func: F) -> F:
    """``--config DIR`` (env SYNCD_CONFIG) and ``--debug``, on every subcommand.

    Both are also options of the group; the command receives the resolved values
    (:func:`resolve_common`), so it never knows where they were typed.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, config_dir: str | None, debug: bool, **kwargs: Any) -> Any:
        config_dir, debug = resolve_common(config_dir, debug)
        return func(*args, config_dir=config_dir, debug=debug, **kwargs)

    return _shared_options(wrapper)  # type: ignore[return-value]


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


@click.group(cls=LazyGroup)
@click.version_option(package_name="syncd")
@_shared_options
def main(config_dir: str | None, debug: bool) -> None:
    """syncd: keeps DingTalk Calendar and CalDAV calendars in agreement.

    --config and --debug may be given before the command or after it.
    """
    del config_dir, debug  # read by each command through resolve_common()


def load(config_dir: str, debug: bool, *, skip_invalid_tenants: bool = False) -> Config:
    """Load configuration for a command, or exit 2 with every problem on its own line.

    Logging goes to stderr (warnings only, unless --debug) until :func:`setup_logging`
    applies the configured format, so stdout carries nothing but a command's results.
    """
    from syncd.config import load_config
    from syncd.observability import configure_logging

    configure_logging("console", "debug" if debug else "warning")
    try:
        config = load_config(
            Path(config_dir), os.environ, skip_invalid_tenants=skip_invalid_tenants
        )
    except ConfigError as exc:
        fail(exc, debug)
        raise  # unreachable: fail() exits
    from syncd.store.guard import REACHABILITY

    REACHABILITY.target = redis_origin(config, config_dir, os.environ)
    return config


def redis_origin(config: Config, config_dir: str, environ: Mapping[str, str]) -> str:
    """The Redis URL (password hidden) and where it came from, for messages about it:
    ``SYNCD_REDIS_URL``, ``DIR/syncd.yaml`` or the default."""
    from syncd.config import REDIS_URL_ENV

    url = _PASSWORD.sub(r"\1***@", config.settings.redis_url)
    if environ.get(REDIS_URL_ENV) is not None:
        return f"{url} (from {REDIS_URL_ENV})"
    settings_file = Path(config_dir) / "syncd.yaml"
    if "redis_url" in config.settings.model_fields_set:
        return f"{url} (from redis_url in {settings_file})"
    return f"{url} (the default; set redis_url in {settings_file} or {REDIS_URL_ENV})"


def setup_logging(config: Config, debug: bool) -> None:
    """Logging as configured (debug level with --debug)."""
    from syncd.observability import configure_logging

    log = config.settings.log
    configure_logging(log.format, "debug" if debug else log.level)


def register_subcommands() -> None:
    """Import every subcommand module so it registers itself on :data:`main` (tools that
    walk the command tree; the command line itself imports them lazily)."""
    for module in sorted({module for module, _ in COMMANDS.values()}):
        importlib.import_module(f"syncd.cli.{module}")
