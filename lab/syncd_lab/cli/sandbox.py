"""``syncd sandbox``: the fake DingTalk Open API server (tests, benchmarks, the demo).

A plugin command, found by syncd's CLI through the ``syncd.commands`` entry point.
"""

from __future__ import annotations

from pathlib import Path

import click
import structlog

from syncd.cli._root import common_options, fail
from syncd.errors import ConfigError
from syncd.observability import configure_logging
from syncd_lab.stack.ports import host_port

log = structlog.get_logger(__name__)


def _host_port(text: str) -> tuple[str, int]:
    try:
        return host_port(text)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc


@click.command("sandbox")
@common_options
@click.option("--listen", metavar="HOST:PORT", default="127.0.0.1:8090", show_default=True)
@click.option(
    "--seed",
    "seed_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Seed YAML: apps (credentials, callback) and users.",
)
@click.option(
    "--state",
    "state_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="JSON file that keeps the sandbox's data across restarts.",
)
@click.option("--camel-case", is_flag=True, help="camelCase calendar fields in callbacks.")
@click.option("--token-ttl", default=7200, show_default=True, help="Access token lifetime (s).")
def sandbox_command(
    config_dir: str,
    debug: bool,
    listen: str,
    seed_file: str,
    state_file: str | None,
    camel_case: bool,
    token_ttl: int,
) -> None:
    """Serve a fake DingTalk Open API (calendar v1.0 + encrypted callbacks)."""
    from aiohttp import web

    from syncd_lab.sandbox.app import create_app
    from syncd_lab.sandbox.seed import load_seed

    del config_dir  # the sandbox needs no syncd configuration
    configure_logging("console", "debug" if debug else "info")
    host, port = _host_port(listen)
    try:
        seed = load_seed(seed_file)
        app = create_app(
            seed,
            state_file=Path(state_file) if state_file else None,
            token_ttl=token_ttl,
            camel_case=camel_case,
        )
    except (ConfigError, ValueError, OSError) as exc:
        fail(exc, debug)
        return
    log.info("sandbox_listening", url=f"http://{host}:{port}", apps=len(seed.apps))
    web.run_app(app, host=host, port=port, print=None, access_log=None)
