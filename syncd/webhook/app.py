"""The webhook's aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from arq.connections import ArqRedis, create_pool

from syncd.config import Config
from syncd.queue import redis_settings
from syncd.store.guard import redis_errors
from syncd.webhook import handlers
from syncd.webhook.keys import ARQ_KEY, CONFIG_KEY


def create_app(config: Config, pool: ArqRedis | None = None) -> web.Application:
    """Build the webhook app; opens its own arq pool on the configured Redis unless given."""
    app = web.Application(client_max_size=config.settings.callback_max_body + 1024)
    app[CONFIG_KEY] = config
    if pool is not None:
        app[ARQ_KEY] = pool
    else:
        app.cleanup_ctx.append(_pool_ctx)
    app.router.add_post("/callbacks/{tenant}", handlers.callback)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    return app


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    with redis_errors("connect"):  # arq retries a few seconds first
        pool = await create_pool(redis_settings(app[CONFIG_KEY].settings.redis_url))
    app[ARQ_KEY] = pool
    yield
    await pool.aclose()
