"""What every operator command sets up: quiet logging on stderr, binding refs, Redis."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace

from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.cli._root import load, setup_logging
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.model import BindingRef
from syncd.observability import configure_logging
from syncd.store.guard import redis_errors
from syncd.worker.context import WorkerContext


def load_quietly(config_dir: str, debug: bool, *, progress: bool = False) -> Config:
    """Load the configuration with logs on stderr from the start (stdout is the output).

    With ``progress`` on a terminal, info logs would tear the progress bar: only warnings
    and errors are logged then (``--debug`` shows everything).
    """
    configure_logging("console", "debug" if debug else "warning")
    config = load(config_dir, debug)
    setup_logging(config, debug)
    chatty = config.settings.log.level in ("debug", "info")
    if progress and chatty and not debug and sys.stderr.isatty():
        configure_logging(config.settings.log.format, "warning")
    return config


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
async def resources(config: Config) -> AsyncIterator[WorkerContext]:
    """What a foreground run shares with the workers (the same :class:`WorkerContext`)."""
    redis = await connect(config)
    try:
        shared = WorkerContext.open(config, redis)
        try:
            yield shared
        finally:
            await shared.close()
    finally:
        await redis.aclose()
