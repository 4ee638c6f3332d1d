"""``syncd demo``: start everything locally and show changes flowing both ways.

A plugin command: syncd's CLI finds it through the ``syncd.commands`` entry point, so
this module imports only click at load time (``syncd --help`` stays fast).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syncd.cli._root import common_options, fail
from syncd.observability import configure_logging

if TYPE_CHECKING:
    from syncd_lab.demo import DemoOptions


async def _run(options: DemoOptions) -> bool:
    """Run the demo; SIGINT/SIGTERM cancel it (once). True when stopped by a signal."""
    from syncd_lab.demo import run_demo

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(run_demo(options, click.echo))
    signals: list[int] = []

    def stop(sig: int) -> None:
        if not signals:  # a second Ctrl-C must not interrupt the clean shutdown
            signals.append(sig)
            click.echo("\nStopping Redis, Radicale, the sandbox and syncd ...")
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        if not signals:
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return bool(signals)


@click.command("demo")
@common_options
@click.option("--once", is_flag=True, help="Run the scenario, print the results and stop.")
@click.option(
    "--keep",
    "--workdir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep Radicale's calendar data, logs and the generated config here, across runs "
    "(default: a temp dir, removed at the end).",
)
@click.option(
    "--port-base",
    type=click.IntRange(1024, 65532),
    default=None,
    help="Fixed ports: Redis N, Radicale N+1, the sandbox N+2, syncd N+3 (default: free ones).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds any one step may take before the demo gives up (exit 1).",
)
def demo_command(
    config_dir: str,
    debug: bool,
    once: bool,
    workdir: Path | None,
    port_base: int | None,
    timeout: float,
) -> None:
    """Start Redis, Radicale, the DingTalk sandbox and syncd; show changes flowing both ways.

    Runs until Ctrl-C with the URLs printed (point a calendar client at the CalDAV one).
    The demo writes its own configuration into the work dir; --config is not used.
    """
    from syncd_lab.demo import DemoFailed, DemoOptions

    del config_dir  # the demo generates its own config directory
    configure_logging("console", "debug" if debug else "warning")
    try:
        options = DemoOptions(workdir=workdir, once=once, timeout=timeout, port_base=port_base)
        interrupted = asyncio.run(_run(options))
    except Exception as exc:  # the CLI edge: one readable line, exit 1
        fail(exc, debug)
    if interrupted and once:
        fail(DemoFailed("interrupted before the scenario finished"), debug)
    click.echo("Stopped.")
