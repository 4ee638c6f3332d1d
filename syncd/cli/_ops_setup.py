"""What every operator command sets up: quiet logging on stderr, binding refs, Redis.

Libraries are imported where they are used: ``syncd status`` needs Redis but neither
aiohttp nor the side adapters, and ``--help`` needs none of them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from syncd.cli._root import load, setup_logging
from syncd.errors import ConfigError
from syncd.model import BindingRef

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from syncd.config import Config
    from syncd.model import OrgDirectory
    from syncd.store.redis import RedisStore
    from syncd.worker.context import WorkerContext


def load_quietly(
    config_dir: str, debug: bool, *, progress: bool = False, serve: bool = True
) -> Config:
    """Load the configuration with logs on stderr from the start (stdout is the output).

    With ``progress`` on a terminal, info logs would tear the progress bar: only warnings
    and errors are logged then (``--debug`` shows everything). With ``serve`` the
    configuration is the one the workers serve (:func:`served`), templates expanded.
    """
    from syncd.observability import configure_logging

    configure_logging("console", "debug" if debug else "warning")
    config = load(config_dir, debug)
    setup_logging(config, debug)
    if not debug:  # a Redis outage ends the command with one line naming the URL's origin
        drop_log_events("redis_lost", "redis_back")
    chatty = config.settings.log.level in ("debug", "info")
    if progress and chatty and not debug and sys.stderr.isatty():
        configure_logging(config.settings.log.format, "warning")
    return served(config) if serve else config


def served(config: Config) -> Config:
    """``config`` as the workers serve it: templates expanded over each tenant's cached
    directory (static bindings only, for importing tenants, when Redis cannot be read)."""
    if not any(t.directory_import or t.binding_templates for t in config.tenants.values()):
        return config
    from syncd.config.templates import expand_config
    from syncd.errors import StoreUnavailable
    from syncd.store.directory import load_directory

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


def drop_log_events(*names: str) -> None:
    """Leave the log events ``names`` out: the command prints that outcome itself, once.

    ``syncd sync`` ends each failed binding with one ``syncd: TENANT/BINDING: Error: reason``
    line; the runner's ``reconcile_failed`` (a worker's record of the same failure) would
    say it again, as ``redis_lost`` would repeat the one line of a Redis failure.
    """
    import structlog

    def drop(_logger: object, _method: str, event: Any) -> Any:
        if event.get("event") in names:
            raise structlog.DropEvent
        return event

    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[drop, *processors])


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
    from arq.connections import create_pool

    from syncd.store.connection import redis_settings
    from syncd.store.guard import redis_errors

    settings = replace(redis_settings(config.settings.redis_url), conn_retries=0)
    with redis_errors("connect"):
        return await create_pool(settings)


@asynccontextmanager
async def store_access(config: Config) -> AsyncIterator[tuple[ArqRedis, RedisStore]]:
    """Redis and the mapping store on it, for commands that need no side (``status``,
    ``conflicts``, ``replay``): no HTTP session, no side adapters imported."""
    from syncd.store.redis import RedisStore

    redis = await connect(config)
    try:
        yield redis, RedisStore(redis)
    finally:
        await redis.aclose()


@asynccontextmanager
async def resources(config: Config) -> AsyncIterator[WorkerContext]:
    """What a foreground run shares with the workers (the same :class:`WorkerContext`)."""
    from syncd.worker.context import WorkerContext

    redis = await connect(config)
    try:
        shared = WorkerContext.open(config, redis)
        try:
            yield shared
        finally:
            await shared.close()
    finally:
        await redis.aclose()
