"""The root command group, the options every subcommand shares, and error handling."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from syncd.errors import ConfigError, SyncdError

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes of CONTRACT.md.
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2

SUBCOMMAND_MODULES = ("check", "serve", "ops", "sandbox", "demo")


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
        click.echo(f"syncd: {name}: {exc}" if isinstance(exc, SyncdError) else f"syncd: {exc}",
                   err=True)
    sys.exit(code)


@click.group()
@click.version_option(package_name="syncd")
def main() -> None:
    """syncd: keeps DingTalk Calendar and CalDAV calendars in agreement."""


for _name in SUBCOMMAND_MODULES:
    try:
        importlib.import_module(f"syncd.cli.{_name}")
    except ModuleNotFoundError as exc:  # a subcommand module not written yet
        if exc.name != f"syncd.cli.{_name}":
            raise
