"""The root command group, the options every subcommand shares, and error handling."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from syncd.config import Config, load_config
from syncd.errors import ConfigError, SyncdError
from syncd.observability import configure_logging

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes (README.md "Running it").
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
        click.echo(
            f"syncd: {name}: {exc}" if isinstance(exc, SyncdError) else f"syncd: {exc}", err=True
        )
    sys.exit(code)


@click.group()
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
