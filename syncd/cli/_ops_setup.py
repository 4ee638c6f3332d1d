"""What every operator command sets up: quiet logging on stderr, binding refs, Redis."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.cli._root import load, setup_logging
from syncd.config import Config
from syncd.config.templates import expand_config
from syncd.errors import ConfigError, StoreUnavailable
from syncd.model import BindingRef, OrgDirectory
from syncd.observability import configure_logging
from syncd.store.directory import load_directory
from syncd.store.guard import redis_errors
from syncd.store.redis import RedisStore


def load_quietly(
    config_dir: str, debug: bool, *, progress: bool = False, serve: bool = True
) -> Config:
    """Load the configuration with logs on stderr from the start (stdout is the output).

    With ``progress`` on a terminal, info logs would tear the progress bar: only warnings
    and errors are logged then (``--debug`` shows everything). With ``serve`` the
    configuration is the one the workers serve (:func:`served`), templates expanded.
    """
    configure_logging("console", "debug" if debug else "warning")
    config = load(config_dir, debug)
    setup_logging(config, debug)
    chatty = config.settings.log.level in ("debug", "info")
    if progress and chatty and not debug and sys.stderr.isatty():
        configure_logging(config.settings.log.format, "warning")
    return served(config) if serve else config


def served(config: Config) -> Config:
    """``config`` as the workers serve it: templates expanded over each tenant's cached
    directory (static bindings only, for importing tenants, when Redis cannot be read)."""
    if not any(t.directory_import or t.binding_templates for t in config.tenants.values()):
        return config

    async def cached() -> dict[str, OrgDirectory | None]:
        redis = await connect(config)
        try:
            return {
                t.id: await load_directory(redis, t.id)
                for t in config.tenants.values()
                if t.directory_import is not None
            }
        finally:
            await redis.aclose()

    try:
        found = asyncio.run(cached())
    except StoreUnavailable:
        found = {}
    return expand_config(config, found)[0]


def binding_refs(config: Config, tenant: str | None, binding: str | None) -> Iterator[BindingRef]:
    """The bindings a command addresses; ``ConfigError`` for an unknown tenant or binding."""
    if tenant is not None and tenant not in config.tenants:
        raise ConfigError(f"no tenant {tenant!r} in the configuration")
    for t, b in config.bindings():
        if (tenant is None or t.id == tenant) and (binding is None or b.id == binding):
            yield BindingRef(t.id, b.id)
    if binding is not None and tenant is not None:
        config.tenant(tenant).binding(binding)  # raises ConfigError when unknown


async def connect(config: Config) -> ArqRedis:
    """An arq pool on the configured Redis; one try, ``StoreUnavailable`` if unreachable."""
    settings = replace(queue.redis_settings(config.settings.redis_url), conn_retries=0)
    with redis_errors("connect"):
        return await create_pool(settings)


@asynccontextmanager
async def resources(config: Config) -> AsyncIterator[dict[str, Any]]:
    """What a foreground run shares with the workers: Redis, tokens, the store."""
    redis = await connect(config)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield {
                "config": config,
                "redis": redis,
                "session": session,
                "tokens": TokenCache(redis),
                "store": RedisStore(redis),
            }
    finally:
        await redis.aclose()
