"""``syncd web``, ``syncd worker`` and ``syncd run``: the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
import structlog
from aiohttp import web

from syncd.cli._root import common_options, load, main, setup_logging
from syncd.config import Config
from syncd.webhook.app import create_app
from syncd.worker.settings import create_worker

log = structlog.get_logger(__name__)

listen_option = click.option(
    "--listen", metavar="HOST:PORT", default=None, help="Address to serve on (syncd.yaml: listen)."
)


def _host_port(config: Config, listen: str | None) -> tuple[str, int]:
    text = listen or config.settings.listen
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--listen")
    return host, int(port)


@main.command("web")
@common_options
@listen_option
def web_command(config_dir: str, debug: bool, listen: str | None) -> None:
    """Serve the DingTalk callback webhook, health and metrics."""
    config = load(config_dir, debug)
    setup_logging(config, debug)
    asyncio.run(_serve(config, listen, web=True, worker=False))


@main.command("worker")
@common_options
def worker_command(config_dir: str, debug: bool) -> None:
    """Run an arq worker: reconciles bindings, polls CalDAV, runs the daily full reconcile."""
    config = load(config_dir, debug)
    setup_logging(config, debug)
    asyncio.run(_serve(config, None, web=False, worker=True))


@main.command("run")
@common_options
@listen_option
def run_command(config_dir: str, debug: bool, listen: str | None) -> None:
    """Web and worker in one process (small installations and the demo)."""
    config = load(config_dir, debug)
    setup_logging(config, debug)
    asyncio.run(_serve(config, listen, web=True, worker=True))


async def _serve(config: Config, listen: str | None, *, web: bool, worker: bool) -> None:
    """Run the chosen parts until SIGINT or SIGTERM, then stop them cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = await start_web(config, listen) if web else None
    arq_worker = create_worker(config) if worker else None
    worker_task = asyncio.create_task(arq_worker.async_run()) if arq_worker else None
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait(
        [t for t in (waiter, worker_task) if t is not None], return_when=asyncio.FIRST_COMPLETED
    )
    log.info("shutting_down")
    if arq_worker is not None and worker_task is not None:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        await arq_worker.close()
    if runner is not None:
        await runner.cleanup()
    waiter.cancel()


async def start_web(config: Config, listen: str | None) -> web.AppRunner:
    """Start the webhook app on HOST:PORT; returns the runner to clean up."""
    host, port = _host_port(config, listen)
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("webhook_listening", url=f"http://{host}:{port}", tenants=len(config.tenants))
    return runner
