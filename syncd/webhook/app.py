"""The webhook's aiohttp application factory.

The app opens its own Redis client unless given one, and never waits for Redis: the
client connects on first use, so the process starts (``/readyz`` 503, callbacks 503)
while Redis is down and serves normally once it is back. A watcher pings Redis every
:data:`WATCH_S` so that losing and regaining it is logged once each
(:func:`syncd.store.connection.watch`).

Shutdown (``AppRunner.cleanup``): the listening sockets close first, then
:class:`~syncd.webhook.keys.WebState` turns ``draining`` (``/readyz`` 503), callbacks
already received finish (queued → ``success``; not queued → 503), and only then is the
Redis client closed (``closed``: anything still asking to queue gets 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from arq.connections import ArqRedis

from syncd.config import Config
from syncd.config.live import LiveConfig
from syncd.store.connection import connect, redis_settings, watch
from syncd.webhook import handlers, push, see
from syncd.webhook.keys import ARQ_KEY, CONFIG_KEY, REPLY_KEY, STATE_KEY, WebState, config_of
from syncd.webhook.reply import ReplyCache

WATCH_S = 2.0
"""How often the webhook pings Redis to notice outages without traffic."""

REDIS_TIMEOUT_S = 2.0
"""Per Redis command: a hanging Redis must not hold a callback past DingTalk's deadline."""


def create_app(
    config: Config | LiveConfig, pool: ArqRedis | None = None, *, callbacks: bool = True
) -> web.Application:
    """Build the webhook app; opens its own Redis client on the configured Redis unless given.

    ``callbacks=False`` serves only health, metrics and status (``syncd worker --listen``).
    """
    live = config if isinstance(config, LiveConfig) else LiveConfig(config)
    app = web.Application(client_max_size=live.current.settings.callback_max_body + 1024)
    app[CONFIG_KEY] = live
    app[STATE_KEY] = WebState()
    app[REPLY_KEY] = ReplyCache()
    if pool is not None:
        app[ARQ_KEY] = pool
    else:
        app.cleanup_ctx.append(_redis_ctx)
    app.on_shutdown.append(_drain)
    if callbacks:
        app.router.add_post("/callbacks/{tenant}", handlers.callback)
        app.router.add_post("/webdav-push/{tenant}/{binding}/{token}", push.message)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", see.metrics)
    app.router.add_get("/status", see.status_page)
    return app


async def _drain(app: web.Application) -> None:
    app[STATE_KEY].draining = True


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = redis_settings(config_of(app).settings.redis_url)
    pool = connect(settings, socket_timeout=REDIS_TIMEOUT_S)
    app[ARQ_KEY] = pool
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(pool, stop, WATCH_S))
    yield
    app[STATE_KEY].closed = True
    stop.set()
    with contextlib.suppress(TimeoutError):  # a ping in flight ends within its timeout
        await asyncio.wait_for(asyncio.shield(watcher), 2 * REDIS_TIMEOUT_S)
    await pool.aclose()
