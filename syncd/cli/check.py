"""``syncd check`` (validate the configuration) and ``syncd schema`` (JSON Schema of a tenant)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import structlog

from syncd.cli._root import common_options, fail, main
from syncd.config import load_config, settings_schema, tenant_schema
from syncd.errors import ConfigError


@contextmanager
def _logs_to_stderr(debug: bool) -> Iterator[None]:
    """The report is this command's output: logs only with --debug, and on stderr."""
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if debug else logging.CRITICAL
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@main.command("check")
@common_options
def check(config_dir: str, debug: bool) -> None:
    """Validate DIR/syncd.yaml and DIR/tenants/*.yaml; list every problem (exit 2)."""
    with _logs_to_stderr(debug):
        try:
            config = load_config(Path(config_dir), os.environ)
        except ConfigError as exc:
            fail(exc, debug)  # exits 2, every problem on its own stderr line
            raise  # not reached
    bindings = sum(len(tenant.bindings) for tenant in config.tenants.values())
    click.echo(f"ok: {_plural(len(config.tenants), 'tenant')}, {_plural(bindings, 'binding')}")


@main.command("schema")
@common_options
@click.option("--settings", "of_settings", is_flag=True, help="The schema of syncd.yaml instead.")
def schema(config_dir: str, debug: bool, of_settings: bool) -> None:
    """Print the JSON Schema of a tenant file (of syncd.yaml with --settings)."""
    del config_dir, debug  # every command takes them; the schema depends on neither
    click.echo(json.dumps(settings_schema() if of_settings else tenant_schema(), indent=2))
