"""An aiohttp application served in this process on a loopback port, for as long as a
block runs: the sandbox (tests, the demo) and the test fixtures' small servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from syncd_lab.stack.ports import LOOPBACK


@asynccontextmanager
async def serve_app(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` (0: a free one, chosen by the kernel, so no
    other process can take it first) until the block ends; yields the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOOPBACK, port).start()
        bound = runner.addresses[0][1]
        yield f"http://{LOOPBACK}:{bound}"
    finally:
        await runner.cleanup()
