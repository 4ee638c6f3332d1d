"""Redis connections: plain URLs or Sentinel, opened lazily, and a persistence check.

``redis_url`` (``SYNCD_REDIS_URL``) takes one of::

    redis://[[user]:password@]host[:port][/db]          rediss:// for TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]

The Sentinel form names the sentinels (port 26379 unless given) and the monitored
master; user and password are the master's (the sentinels are asked without them).
The master's address is asked from the sentinels on every
new connection, so after a failover the next command reaches the promoted replica.

:func:`connect` never waits for Redis: the client connects on first use, so
``syncd web`` starts (and answers 503) while Redis is down, and commands simply fail
with ``StoreUnavailable`` (:mod:`syncd.store.guard`) until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast
from urllib.parse import unquote

import structlog
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ResponseError

from syncd.errors import ConfigError, StoreUnavailable
from syncd.store.guard import redis_errors

log = structlog.get_logger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
CONNECT_TIMEOUT_S = 2.0


def redis_settings(url: str) -> RedisSettings:
    """arq connection settings for a ``redis://``, ``rediss://``, ``unix://`` or Sentinel URL."""
    if url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_settings(url)
    return RedisSettings.from_dsn(url)


def _sentinel_settings(url: str) -> RedisSettings:
    """``redis+sentinel://[[user]:pw@]h1[:p1],h2[:p2]/master[/db]`` as arq settings."""
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    userinfo, _, hosts_and_path = rest.rpartition("@")
    hosts_text, _, path = hosts_and_path.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts_text or not parts or len(parts) > 2 or not (len(parts) < 2 or parts[1].isdigit()):
        raise ConfigError(
            f"{SENTINEL_SCHEME} URL must be {SENTINEL_SCHEME}://HOST[:PORT],.../MASTER[/DB]"
        )
    hosts = []
    for item in hosts_text.split(","):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host or (port and not port.isdigit()):
            raise ConfigError(f"{SENTINEL_SCHEME} URL: {item!r} is not HOST[:PORT]")
        hosts.append((host, int(port) if port else SENTINEL_PORT))
    username, _, password = userinfo.partition(":")
    return RedisSettings(
        host=hosts,
        sentinel=True,
        sentinel_master=parts[0],
        database=int(parts[1]) if len(parts) > 1 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


class _SentinelRedis(ArqRedis):
    """An arq client on a Sentinel-managed pool; closing it also closes the sentinel clients."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            for client in self.sentinels.sentinels:
                await client.aclose()


def connect(settings: RedisSettings, *, socket_timeout: float = 10.0) -> ArqRedis:
    """An arq client for ``settings`` that connects on first use (no start-up ping).

    ``socket_timeout`` bounds every command, so a Redis that hangs (a failover in
    progress, a partition) fails the command rather than the process.
    """
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": min(CONNECT_TIMEOUT_S, socket_timeout),
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
    }
    if settings.sentinel:
        timeout = common["socket_connect_timeout"]
        sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        sentinels = Sentinel(settings.host, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        master = settings.sentinel_master
        client = cast(_SentinelRedis, sentinels.master_for(master, _SentinelRedis, **common))
        client.sentinels = sentinels
        return client
    return ArqRedis(
        host=settings.host,
        port=settings.port,
        unix_socket_path=settings.unix_socket_path,
        ssl=settings.ssl,
        **common,
    )


async def check_persistence(redis: ArqRedis) -> str:
    """Log once whether Redis keeps its data across a restart; returns what was found.

    ``"persistent"`` (RDB snapshots or AOF), ``"none"`` (a restart loses the mapping
    store: the next runs re-list both sides in full, which is slow but creates no
    duplicates) or ``"unknown"`` (``CONFIG GET`` refused, as managed Redis services do).
    Raises ``StoreUnavailable`` if Redis cannot be reached.
    """
    with redis_errors("config_get"):
        try:
            save = await redis.config_get("save")
            aof = await redis.config_get("appendonly")
        except ResponseError as exc:  # CONFIG disabled or renamed: say so, carry on
            log.warning("redis_persistence_unknown", reason=str(exc))
            return "unknown"
    if _text(save.get("save")) or _text(aof.get("appendonly")) == "yes":
        return "persistent"
    log.warning(
        "redis_without_persistence",
        hint="save and appendonly are off: a Redis restart loses the mapping store "
        "and costs a full reconcile of every binding",
    )
    return "none"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


_checked: set[str] = set()  # "persistence" once checked in this process


async def warn_if_not_persistent(redis: ArqRedis) -> None:
    """:func:`check_persistence`, once per process (``syncd run`` has a web and a worker)."""
    if "persistence" in _checked:
        return
    _checked.add("persistence")
    try:
        await check_persistence(redis)
    except StoreUnavailable:
        _checked.discard("persistence")  # checked again at the next contact
        raise


async def watch(redis: ArqRedis, stop: asyncio.Event, every_s: float = 2.0) -> None:
    """Ping Redis every ``every_s`` until ``stop`` is set.

    Keeps :data:`~syncd.store.guard.REACHABILITY` current, so losing and regaining Redis
    is logged once each even when no traffic touches it, and checks persistence at the
    first contact (:func:`warn_if_not_persistent`). Stopped by an event, not by
    cancelling: redis-py 5 on Python 3.11 can lose a cancellation that lands while it
    opens a connection (its reads run under ``asyncio.timeout``), and a watcher that
    missed it would keep its owner's shutdown waiting forever.
    """
    while not stop.is_set():
        try:
            with redis_errors("ping"):
                await redis.ping()
            await warn_if_not_persistent(redis)
        except StoreUnavailable:
            pass  # REACHABILITY logged it (once)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
