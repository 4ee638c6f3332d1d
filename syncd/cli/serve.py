"""``syncd web``, ``syncd worker`` and ``syncd run``: the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
import structlog
from aiohttp import web

from syncd.cli._root import common_options, fail, load, main, setup_logging
from syncd.config import Config
from syncd.errors import SyncdError
from syncd.observability import configure_logging
from syncd.store.guard import redis_errors
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
    _run(config_dir, debug, listen, web=True, worker=False)


@main.command("worker")
@common_options
def worker_command(config_dir: str, debug: bool) -> None:
    """Run an arq worker: reconciles bindings, polls CalDAV, runs the daily full reconcile."""
    _run(config_dir, debug, None, web=False, worker=True)


@main.command("run")
@common_options
@listen_option
def run_command(config_dir: str, debug: bool, listen: str | None) -> None:
    """Web and worker in one process (small installations and the demo)."""
    _run(config_dir, debug, listen, web=True, worker=True)


def _run(config_dir: str, debug: bool, listen: str | None, *, web: bool, worker: bool) -> None:
    """Load, log to stderr, serve until a signal; a start-up failure is one line, exit 1."""
    configure_logging("console", "debug" if debug else "warning")  # until the config says
    config = load(config_dir, debug)
    setup_logging(config, debug)
    try:
        asyncio.run(_serve(config, listen, web=web, worker=worker))
    except SyncdError as exc:
        fail(exc, debug)


async def _serve(config: Config, listen: str | None, *, web: bool, worker: bool) -> None:
    """Run the chosen parts until SIGINT or SIGTERM, then stop them cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = await start_web(config, listen) if web else None
    try:
        if worker:
            await _work_until(config, stop)
        else:
            await stop.wait()
            log.info("shutting_down")
    finally:
        if runner is not None:
            await runner.cleanup()


async def _work_until(config: Config, stop: asyncio.Event) -> None:
    """Run an arq worker until ``stop`` is set or the worker ends (Redis lost at start)."""
    arq_worker = create_worker(config)
    worker_task = asyncio.create_task(arq_worker.async_run())
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, worker_task], return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting_down")
        worker_task.cancel()
        with redis_errors("worker"), contextlib.suppress(asyncio.CancelledError):
            await worker_task
    finally:
        waiter.cancel()
        await arq_worker.close()


async def start_web(config: Config, listen: str | None) -> web.AppRunner:
    """Start the webhook app on HOST:PORT; returns the runner to clean up.

    Raises ``StoreUnavailable`` if Redis stays unreachable, ``SyncdError`` if the address
    cannot be bound.
    """
    host, port = _host_port(config, listen)
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()  # opens the arq pool: StoreUnavailable if Redis stays unreachable
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SyncdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("webhook_listening", url=f"http://{host}:{port}", tenants=len(config.tenants))
    return runner
