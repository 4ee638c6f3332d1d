"""Redis connections: Sentinel URLs, lazy connecting, outage logging, the persistence check."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from syncd import queue
from syncd.errors import ConfigError, StoreUnavailable
from syncd.store.connection import check_persistence, connect, redis_settings
from syncd.store.guard import REACHABILITY
from syncd_lab.stack.ports import free_port
from tests.fixtures.redis_server import RedisServer, start_redis


@pytest.mark.parametrize(
    ("url", "hosts", "master", "db", "password"),
    [
        ("redis+sentinel://10.0.0.1/mymaster", [("10.0.0.1", 26379)], "mymaster", 0, None),
        (
            "redis+sentinel://:s%40cret@a:1,b:2,c/syncd/3",
            [("a", 1), ("b", 2), ("c", 26379)],
            "syncd",
            3,
            "s@cret",
        ),
    ],
)
def test_sentinel_urls(
    url: str, hosts: list[tuple[str, int]], master: str, db: int, password: str | None
) -> None:
    """A redis+sentinel URL names the sentinels (26379 by default), the master, db, password."""
    settings = redis_settings(url)
    assert settings.sentinel
    assert (settings.host, settings.sentinel_master, settings.database) == (hosts, master, db)
    assert settings.password == password


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379",
        "redis+sentinel://h1:26379/",
        "redis+sentinel:///mymaster",
        "redis+sentinel://h1:port/m",
        "redis+sentinel://h1/m/notadb",
        "redis+sentinel://h1/m/0/extra",
    ],
)
def test_bad_sentinel_urls_are_config_errors(url: str) -> None:
    """Every malformed Sentinel URL is refused with a one-line reason."""
    with pytest.raises(ConfigError, match="redis\\+sentinel URL"):
        redis_settings(url)


def test_plain_urls_keep_their_meaning() -> None:
    """redis:// URLs are parsed as before (host, port, db, password, TLS)."""
    settings = redis_settings("rediss://:pw@10.0.0.5:6380/2")
    assert (settings.host, settings.port, settings.database) == ("10.0.0.5", 6380, 2)
    assert (settings.password, settings.ssl, settings.sentinel) == ("pw", True, False)


async def test_connect_needs_no_redis_and_outages_log_once() -> None:
    """A client of a Redis that is down is made at once; failures raise StoreUnavailable
    and log ``redis_lost`` once however many there are, and ``redis_back`` once after."""
    port = free_port()
    client = connect(queue.redis_settings(f"redis://127.0.0.1:{port}/0"))
    server = None
    REACHABILITY.back()  # the process-wide state as a fresh process starts: reachable
    try:
        with capture_logs() as logs:
            for _ in range(3):
                with pytest.raises(StoreUnavailable):
                    await queue.ping(client)
            server = start_redis(port=port)
            await queue.ping(client)
            await queue.ping(client)
        events = [e["event"] for e in logs if e["log_level"] != "debug"]
        assert events == ["redis_lost", "redis_back"]
        assert REACHABILITY.up
    finally:
        await client.aclose()
        if server is not None:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def servers() -> Iterator[dict[str, RedisServer]]:
    """Three Redis servers: no persistence, append-only file, and CONFIG disabled."""
    found = {
        "none": start_redis(),
        "persistent": start_redis(persist=True),
        "unknown": start_redis(args=("--rename-command", "CONFIG", "")),
    }
    yield found
    for server in found.values():
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.mark.parametrize(
    ("kind", "logged"),
    [
        ("none", ["redis_without_persistence"]),
        ("persistent", []),
        ("unknown", ["redis_persistence_unknown"]),
    ],
)
async def test_persistence_check(
    servers: dict[str, RedisServer], kind: str, logged: list[str]
) -> None:
    """Without RDB or AOF a warning says a restart costs a full reconcile; a managed Redis
    that refuses CONFIG gets "could not tell"; a persistent one no warning."""
    client = connect(queue.redis_settings(servers[kind].url))
    try:
        with capture_logs() as logs:
            assert await check_persistence(client) == kind
    finally:
        await client.aclose()
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == logged
