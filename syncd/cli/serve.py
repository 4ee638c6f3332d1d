"""``syncd web``, ``syncd worker`` and ``syncd run``: the long-running processes.

They start and keep running whether or not Redis is reachable (the webhook answers 503,
the worker waits and reconnects with backoff: :mod:`syncd.worker.supervisor`). SIGTERM
or SIGINT stops them gracefully within ``shutdown_timeout`` (``syncd.yaml``, default
30 s); past it, or on a second signal, the process exits at once. Nothing is lost either
way: a callback is acknowledged only once queued, and an interrupted reconcile is re-run.
"""

from __future__ import annotations

import asyncio
import os
import signal

import click
import structlog
from aiohttp import web

from syncd.cli._root import EXIT_RUNTIME, common_options, fail, load, main, setup_logging
from syncd.config import Config, parse_listen
from syncd.delivery.service import run_delivery
from syncd.errors import ConfigError, SyncdError
from syncd.observability import configure_logging
from syncd.webhook.app import create_app
from syncd.worker.supervisor import supervise

log = structlog.get_logger(__name__)

_HARD_MARGIN_S = 3.0  # past shutdown_timeout + this, the process exits whatever is left

listen_option = click.option(
    "--listen", metavar="HOST:PORT", default=None, help="Address to serve on (syncd.yaml: listen)."
)


def _host_port(config: Config, listen: str | None) -> tuple[str, int]:
    try:
        return parse_listen(listen or config.settings.listen)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc


@main.command("web")
@common_options
@listen_option
def web_command(config_dir: str, debug: bool, listen: str | None) -> None:
    """Serve the DingTalk callback webhook, health and metrics."""
    _run(config_dir, debug, listen, web=True, worker=False)


@main.command("worker")
@common_options
def worker_command(config_dir: str, debug: bool) -> None:
    """Run an arq worker: reconciles, polls, full reconciles, DingTalk Stream and failedResults."""
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
    """Run the chosen parts until SIGINT or SIGTERM, then stop them within the shutdown timeout.

    Redis need not be up: the webhook answers 503 and the worker waits until it is.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, config.settings.shutdown_timeout)
    runner = await start_web(config, listen) if web else None
    # Stream connections and failedResults pulls run beside the worker (syncd.delivery).
    delivery = asyncio.create_task(run_delivery(config, stop)) if worker else None
    try:
        if worker:
            await supervise(config, stop)
        else:
            await stop.wait()
    finally:
        if delivery is not None:
            stop.set()
            await delivery
        if runner is not None:
            await runner.cleanup()
    log.info("stopped")


def _on_signal(stop: asyncio.Event, timeout_s: float) -> None:
    """First signal: stop gracefully, with a hard deadline; a second one: exit now."""
    if stop.is_set():
        log.warning("shutdown_forced")
        os._exit(EXIT_RUNTIME)
    log.info("shutting_down", timeout_s=timeout_s)
    stop.set()
    asyncio.get_running_loop().call_later(timeout_s + _HARD_MARGIN_S, _overdue, timeout_s)


def _overdue(timeout_s: float) -> None:
    """The graceful shutdown overran its bound: leave anyway (jobs are re-run elsewhere)."""
    log.error("shutdown_overdue", timeout_s=timeout_s)
    os._exit(EXIT_RUNTIME)


async def start_web(config: Config, listen: str | None) -> web.AppRunner:
    """Start the webhook app on HOST:PORT; returns the runner to clean up.

    Starts whether or not Redis is reachable (callbacks get 503 until it is). Raises
    ``SyncdError`` if the address cannot be bound.
    """
    host, port = _host_port(config, listen)
    grace = max(1.0, config.settings.shutdown_timeout - _HARD_MARGIN_S)
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SyncdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("webhook_listening", url=f"http://{host}:{port}", tenants=len(config.tenants))
    return runner
