"""The Redis lease behind "one Stream connection per tenant across the fleet" (real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aredis

from syncd.delivery.lease import RedisLease, while_held
from tests.fixtures.redis_server import start_redis

TTL_S = 1.5


class Work:
    """Leased work that records when it runs and when it is cancelled."""

    def __init__(self) -> None:
        self.running = False
        self.started: list[float] = []
        self.cancelled: list[float] = []

    def __call__(self) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            self.running = True
            self.started.append(time.monotonic())
            try:
                await asyncio.Event().wait()
            finally:
                self.running = False
                self.cancelled.append(time.monotonic())

        return run


async def _until(check: Callable[[], bool], within: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_one_holder_at_a_time_and_takeover_after_a_crash(redis_url: str) -> None:
    """Two contenders: one runs; when it dies without releasing, the other runs after the ttl."""
    r1, r2 = aredis.Redis.from_url(redis_url), aredis.Redis.from_url(redis_url)
    a, b = Work(), Work()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(while_held(RedisLease(r1, "k", TTL_S), a(), stop_a, retry_s=0.1))
    await _until(lambda: a.running, 5)
    second = asyncio.create_task(while_held(RedisLease(r2, "k", TTL_S), b(), stop_b, retry_s=0.1))
    await asyncio.sleep(TTL_S * 2)  # renewed meanwhile: b never ran
    assert not b.started
    first.cancel()  # a crash: nothing released
    with contextlib.suppress(asyncio.CancelledError):
        await first
    crashed = time.monotonic()
    await _until(lambda: b.running, 5)
    assert b.started[0] - crashed < TTL_S + 0.5
    stop_b.set()
    await second
    assert await r2.get("k") is None  # released on stop
    await r1.aclose()
    await r2.aclose()


async def test_a_stolen_lease_stops_the_work(redis_url: str) -> None:
    """If the key no longer holds our token, the next renewal stops the work."""
    r = aredis.Redis.from_url(redis_url)
    work, stop = Work(), asyncio.Event()
    task = asyncio.create_task(while_held(RedisLease(r, "k2", TTL_S), work(), stop, retry_s=5))
    await _until(lambda: work.running, 5)
    await r.set("k2", "someone-else", px=60_000)
    await _until(lambda: not work.running, TTL_S)
    stop.set()
    await task
    assert await r.get("k2") == b"someone-else"  # not ours: left alone
    await r.aclose()


async def test_redis_gone_stops_the_work_before_the_lease_could_expire() -> None:
    """Redis stops: the holder cancels its work within 2/3 of the ttl of its last renewal."""
    server = start_redis()
    r = aredis.Redis.from_url(server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    work, stop = Work(), asyncio.Event()
    task = asyncio.create_task(while_held(RedisLease(r, "k3", TTL_S), work(), stop, retry_s=0.2))
    try:
        await _until(lambda: work.running, 5)
        await asyncio.sleep(TTL_S / 2)
        stopped_at = time.monotonic()
        server.stop()
        await _until(lambda: not work.running, TTL_S)
        assert work.cancelled[0] - stopped_at < TTL_S * 2 / 3 + 0.3
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await r.aclose()
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
