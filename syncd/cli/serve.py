"""``syncd web``, ``syncd worker`` and ``syncd run``: the long-running processes.

They start and keep running whether or not Redis is reachable (the webhook answers 503,
the worker waits and reconnects with backoff: :mod:`syncd.worker.supervisor`). SIGTERM
or SIGINT stops them gracefully within ``shutdown_timeout`` (``syncd.yaml``, default
30 s); past it, or on a second signal, the process exits at once. Nothing is lost either
way: a callback is acknowledged only once queued, and an interrupted reconcile is re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import click
import structlog
from aiohttp import web

from syncd.cli._root import EXIT_RUNTIME, common_options, fail, load, main, setup_logging
from syncd.config import Config, parse_listen
from syncd.config.live import LiveConfig
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
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help="Also serve /metrics, /status, /healthz and /readyz here (no callbacks).",
)
def worker_command(config_dir: str, debug: bool, listen: str | None) -> None:
    """Run an arq worker: reconciles, polls, full reconciles, DingTalk Stream and failedResults."""
    _run(config_dir, debug, listen, web=False, worker=True)


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
    live = LiveConfig(config, Path(config_dir), os.environ)
    try:
        asyncio.run(_serve(live, listen, web=web, worker=worker))
    except SyncdError as exc:
        fail(exc, debug)


async def _serve(live: LiveConfig, listen: str | None, *, web: bool, worker: bool) -> None:
    """Run the chosen parts until SIGINT or SIGTERM, then stop them within the shutdown timeout.

    Redis need not be up: the webhook answers 503 and the worker waits until it is.
    SIGHUP, or a changed config file (checked every :data:`RELOAD_CHECK_S`), reloads the
    tenants (:mod:`syncd.config.live`). A worker serves HTTP only when given ``listen``.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    timeout = live.current.settings.shutdown_timeout
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, timeout)
    loop.add_signal_handler(signal.SIGHUP, live.reload, "SIGHUP")
    watcher = asyncio.create_task(_watch_files(live, stop))
    runner = None
    if web or listen is not None:
        runner = await start_web(live, listen, callbacks=web)
    # Stream connections and failedResults pulls run beside the worker (syncd.delivery);
    # they keep the tenants they started with (a reload's new Stream tenants need a restart).
    delivery = asyncio.create_task(run_delivery(live.current, stop)) if worker else None
    try:
        if worker:
            await supervise(live, stop)
        else:
            await stop.wait()
    finally:
        watcher.cancel()
        if delivery is not None:
            stop.set()
            await delivery
        if runner is not None:
            await runner.cleanup()
    log.info("stopped")


RELOAD_CHECK_S = 5.0
"""How often a long-running process looks for changed config files."""


async def _watch_files(live: LiveConfig, stop: asyncio.Event) -> None:
    """Reload when a config file's modification time or size changed."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RELOAD_CHECK_S)
        if not stop.is_set() and live.changed():
            live.reload("file changed")


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


async def start_web(
    config: Config | LiveConfig, listen: str | None, *, callbacks: bool = True
) -> web.AppRunner:
    """Start the webhook app on HOST:PORT; returns the runner to clean up.

    Starts whether or not Redis is reachable (callbacks get 503 until it is). Raises
    ``SyncdError`` if the address cannot be bound. ``callbacks=False``: only health,
    metrics and status (a worker's listener).
    """
    current = config.current if isinstance(config, LiveConfig) else config
    host, port = _host_port(current, listen)
    grace = max(1.0, current.settings.shutdown_timeout - _HARD_MARGIN_S)
    app = create_app(config, callbacks=callbacks)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SyncdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    event = "webhook_listening" if callbacks else "metrics_listening"
    log.info(event, url=f"http://{host}:{port}", tenants=len(current.tenants))
    return runner
