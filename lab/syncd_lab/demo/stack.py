"""Everything the demo runs, started in order and stopped in reverse.

Redis and Radicale are child processes (:mod:`syncd_lab.demo.children`); the DingTalk sandbox
and syncd itself (webhook and worker, as ``syncd run`` serves them) run in this process
on the same event loop. The config directory syncd runs from is written to the work dir
and loaded with :func:`syncd.config.load_config`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from arq.worker import Worker

from syncd.config import Config, load_config
from syncd.webhook.app import create_app as create_webhook_app
from syncd.worker.settings import create_worker
from syncd_lab.demo import _config
from syncd_lab.demo._errors import DemoFailed
from syncd_lab.demo._wait import wait_until
from syncd_lab.demo.children import Child, Children
from syncd_lab.sandbox.app import SANDBOX_KEY, create_app
from syncd_lab.sandbox.sandbox import Sandbox
from syncd_lab.stack.dav import radicale_command
from syncd_lab.stack.ports import LOOPBACK, free_port, host_port, port_open
from syncd_lab.stack.redis_server import NoRedis, redis_command
from syncd_lab.stack.serving import serve_app

log = structlog.get_logger(__name__)


@dataclass
class Stack:
    """Handles on every running part of the demo and the URLs to reach them."""

    workdir: Path
    config_dir: Path
    config: Config
    creds: _config.Credentials
    redis: Child
    radicale: Child
    sandbox: Sandbox
    sandbox_url: str
    syncd_url: str
    worker_task: asyncio.Task[None]
    children: Children

    @property
    def radicale_url(self) -> str:
        """Radicale's root URL (with a trailing slash)."""
        return f"http://{LOOPBACK}:{self.radicale.port}/"

    @property
    def calendar_url(self) -> str:
        """The demo calendar collection: what a calendar client subscribes to."""
        return f"http://{LOOPBACK}:{self.radicale.port}{_config.CALENDAR_PATH}"

    @property
    def webhook_url(self) -> str:
        """The DingTalk event-subscription URL of the demo tenant."""
        return f"{self.syncd_url}/callbacks/{_config.TENANT}"

    def alive(self) -> None:
        """Raise :class:`DemoFailed` if a child or the worker has stopped on its own."""
        self.children.check()
        if self.worker_task.done():
            exc = None if self.worker_task.cancelled() else self.worker_task.exception()
            raise DemoFailed(f"the syncd worker stopped: {exc!r}")


@dataclass(frozen=True)
class Ports:
    """The demo's loopback ports: Redis, Radicale, the sandbox, syncd (0: any free one)."""

    redis: int = 0
    radicale: int = 0
    sandbox: int = 0
    syncd: int = 0

    @classmethod
    def from_base(cls, base: int | None) -> Ports:
        """``base`` .. ``base + 3`` in that order (``--port-base``); None: free ports.

        Raises :class:`DemoFailed` naming the first port something already listens on.
        """
        if base is None:
            return cls()
        ports = cls(base, base + 1, base + 2, base + 3)
        for port in (ports.redis, ports.radicale, ports.sandbox, ports.syncd):
            if port_open(port):
                raise DemoFailed(
                    f"port {port} is in use (--port-base {base} uses {base}-{base + 3})"
                )
        return ports


async def _start_children(
    workdir: Path, children: Children, limit: float, ports: Ports
) -> tuple[Child, Child]:
    """Redis and Radicale on their loopback ports, each answering before this returns."""
    (workdir / "redis").mkdir(parents=True, exist_ok=True)
    redis_port, radicale_port = ports.redis or free_port(), ports.radicale or free_port()
    try:
        redis_argv = redis_command(redis_port, workdir / "redis")
    except NoRedis as exc:
        raise DemoFailed(str(exc)) from exc
    redis = children.start("Redis", redis_argv, redis_port, workdir / "redis.log")
    radicale = children.start(
        "Radicale",
        radicale_command(radicale_port, workdir / "radicale"),
        radicale_port,
        workdir / "radicale.log",
    )
    for child in (redis, radicale):
        await wait_until(
            _answers(child.port),
            limit=limit,
            what=f"{child.name} to listen on {LOOPBACK}:{child.port} (log: {child.log_path})",
            alive=children.check,
        )
    return redis, radicale


def _answers(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await asyncio.to_thread(port_open, port)

    return check


async def make_calendar(url: str) -> None:
    """MKCALENDAR the demo calendar; one that already exists (a reused work dir) is fine."""
    auth = aiohttp.BasicAuth(_config.CALDAV_USER, "demo")
    async with aiohttp.ClientSession(auth=auth) as session:
        async with session.request("MKCALENDAR", url) as made:
            if made.status == 201:
                return
            text = " ".join((await made.text()).split())[:200]
        async with session.request("PROPFIND", url, headers={"Depth": "0"}) as found:
            if found.status == 207:
                return  # it was there already
    raise DemoFailed(f"MKCALENDAR {url} answered {made.status}: {text}")


@asynccontextmanager
async def _sandbox(creds: _config.Credentials, port: int = 0) -> AsyncIterator[tuple[Sandbox, str]]:
    """The DingTalk sandbox on a loopback port (0: a free one): ``(sandbox, base URL)``."""
    app = create_app(_config.sandbox_seed(creds))
    async with serve_app(app, port) as url:
        yield app[SANDBOX_KEY], url


@asynccontextmanager
async def _syncd(config: Config) -> AsyncIterator[asyncio.Task[None]]:
    """The webhook and an arq worker, as ``syncd run`` serves them; yields the worker task.

    The same parts ``syncd run`` serves, started here on the demo's own event loop.
    """
    host, port = host_port(config.settings.listen)
    runner = web.AppRunner(create_webhook_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    worker: Worker = create_worker(config)
    task = asyncio.create_task(worker.async_run(), name="syncd-worker")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()
        await runner.cleanup()


@asynccontextmanager
async def running_stack(
    workdir: Path, children: Children, limit: float, ports: Ports | None = None
) -> AsyncIterator[Stack]:
    """Start Redis, Radicale, the sandbox and syncd; stop the in-process parts on exit.

    The child processes belong to ``children``, whose owner stops them.
    """
    ports = ports or Ports()
    creds = _config.Credentials.fresh()
    redis, radicale = await _start_children(workdir, children, limit, ports)
    await make_calendar(f"http://{LOOPBACK}:{radicale.port}{_config.CALENDAR_PATH}")
    async with _sandbox(creds, ports.sandbox) as (sandbox, sandbox_url):
        listen = f"{LOOPBACK}:{ports.syncd or free_port()}"
        config_dir = _config.write_config(
            workdir / "config",
            creds,
            redis_url=f"redis://{LOOPBACK}:{redis.port}/0",
            listen=listen,
            sandbox_url=sandbox_url,
            calendar=f"http://{LOOPBACK}:{radicale.port}{_config.CALENDAR_PATH}",
        )
        config = load_config(config_dir, {})  # the demo's own file only: no SYNCD_REDIS_URL
        async with _syncd(config) as worker_task:
            stack = Stack(
                workdir=workdir,
                config_dir=config_dir,
                config=config,
                creds=creds,
                redis=redis,
                radicale=radicale,
                sandbox=sandbox,
                sandbox_url=sandbox_url,
                syncd_url=f"http://{listen}",
                worker_task=worker_task,
                children=children,
            )
            if not await sandbox.register_callback(_config.APP_KEY, stack.webhook_url):
                raise DemoFailed(f"the webhook {stack.webhook_url} did not answer check_url")
            log.debug("demo_stack_ready", webhook=stack.webhook_url)
            yield stack
