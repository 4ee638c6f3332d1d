"""The root command group and the import of every subcommand module."""

from __future__ import annotations

import importlib

import click

SUBCOMMAND_MODULES = ("check",)


@click.group()
@click.option(
    "--config",
    "config_dir",
    default="./config",
    envvar="SYNCD_CONFIG",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding syncd.yaml and tenants/*.yaml.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, config_dir: str, debug: bool) -> None:
    """syncd: keeps DingTalk Calendar and CalDAV calendars in agreement."""
    ctx.ensure_object(dict)
    ctx.obj["config_dir"] = config_dir
    ctx.obj["debug"] = debug


for _name in SUBCOMMAND_MODULES:
    try:
        importlib.import_module(f"syncd.cli.{_name}")
    except ModuleNotFoundError as exc:  # a subcommand still being written
        if exc.name != f"syncd.cli.{_name}":
            raise
