"""The worker's cron jobs: CalDAV polls at each binding's interval, the daily full reconcile."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.store import keys, schedule
from syncd.worker import settings, tasks
from syncd.worker.context import worker_context
from syncd.worker.settings import shutdown, startup, worker_settings

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def _config(root: Path, redis_url: str) -> Config:
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nfull_reconcile_at: '04:30'\n")
    (root / "tenants" / "acme.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: acme
            dingtalk:
              api_base: http://127.0.0.1:9
              app_key: k
              app_secret: s
              callback: {{token: t, aes_key: {AES}}}
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
            bindings:
              - id: fast
                dingtalk_user: u-alice
                caldav: {{url: "http://127.0.0.1:9/a/"}}
                poll_interval: 10m
              - id: slow
                dingtalk_user: u-alice
                caldav: {{url: "http://127.0.0.1:9/b/"}}
                poll_interval: 1h
            """
        )
    )
    return load_config(root, {})


@pytest.fixture
async def ctx(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    """An arq job context as the worker's start-up leaves it, on the test Redis."""
    pool = await create_pool(queue.redis_settings(redis_url))
    ctx: dict[str, Any] = {"redis": pool}
    await startup(ctx, _config(tmp_path / "config", redis_url))
    yield ctx
    await shutdown(ctx)
    await pool.aclose()


async def _queued(pool: ArqRedis) -> int:
    return int(await pool.zcard("arq:queue"))


async def test_poll_requests_each_binding_once_per_interval(ctx: dict[str, Any]) -> None:
    """The poll cron queues both bindings first, then only those whose interval passed."""
    assert await tasks.poll_due(ctx) == 2
    assert await _queued(ctx["redis"]) == 2
    assert await tasks.poll_due(ctx) == 0  # neither interval has passed yet
    # Once the fast binding's next poll time has come it is due again (its job is still
    # queued, so the request coalesces into it).
    await ctx["redis"].zadd(keys.POLL_SCHEDULE, {schedule.member(BindingRef("acme", "fast")): 0})
    assert await tasks.poll_due(ctx) == 1
    assert await _queued(ctx["redis"]) == 2


async def test_daily_full_reconcile_marks_every_binding_full(ctx: dict[str, Any]) -> None:
    """The daily cron asks for a full run of every binding; the mark survives coalescing."""
    assert await tasks.full_reconcile_all(ctx) == 2
    for binding in ("fast", "slow"):
        ref = BindingRef("acme", binding)
        assert await queue.take_full(ctx["redis"], ref) is True
        assert await queue.take_full(ctx["redis"], ref) is False


def test_worker_settings_schedule_the_crons(ctx: dict[str, Any]) -> None:
    """The daily cron runs at full_reconcile_at (UTC); the poll cron every second."""
    settings = worker_settings(worker_context(ctx).config)
    by_name = {c.name: c for c in settings["cron_jobs"]}
    daily = by_name["cron:full_reconcile_all"]
    assert (daily.hour, daily.minute, daily.second) == ({4}, {30}, {0})
    poll = by_name["cron:poll_due"]
    # A binding that just changed is polled every 2 s, so the cron ticks every second.
    assert poll.second == set(range(60))
    assert [f.name for f in settings["functions"]] == [queue.RECONCILE_TASK]


def _many_bindings(root: Path, redis_url: str, n: int, every: str = "1s") -> Config:
    """``n`` bindings b00..., all polled ``every`` (all due at the first tick)."""
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\n")
    bindings = "".join(
        f"""  - id: b{i:02d}
    dingtalk_user: u-alice
    caldav: {{url: "http://127.0.0.1:9/c{i}/"}}
    poll_interval: {every}
"""
        for i in range(n)
    )
    (root / "tenants" / "acme.yaml").write_text(
        "id: acme\ndingtalk:\n  api_base: http://127.0.0.1:9\n  app_key: k\n  app_secret: s\n"
        f"  callback: {{token: t, aes_key: {AES}}}\n"
        "directory:\n  - {union_id: u-alice, email: alice@acme.example}\n"
        f"bindings:\n{bindings}"
    )
    return load_config(root, {})


async def test_polls_never_fill_the_queue_ahead_of_pushes(tmp_path: Path, redis_url: str) -> None:
    """With 12 bindings due, a tick queues only POLL_ROOM polls; a push queued after them is
    within the worker's first fetch (max_jobs), and a busy queue admits one poll a tick."""
    pool = await create_pool(queue.redis_settings(redis_url))
    try:
        config = _many_bindings(tmp_path / "config", redis_url, 12)
        ctx: dict[str, Any] = {"redis": pool}
        await startup(ctx, config)
        assert await tasks.poll_due(ctx) == tasks.POLL_ROOM
        assert await queue.ready_reconciles(pool) == tasks.POLL_ROOM
        push = BindingRef("acme", "b11")  # not polled yet
        assert await queue.request_reconcile(pool, push, "callback:updated")
        order = [j.decode() for j in await pool.zrange("arq:queue", 0, -1)]
        rank = order.index(queue.job_id_for(push))
        assert rank == tasks.POLL_ROOM
        assert rank < worker_settings(config)["max_jobs"]
        # The queue is full: one poll per tick still goes in, so polls are never starved.
        assert await tasks.poll_due(ctx) == 1
        # The bindings left out stayed due: once the queue drains they are requested.
        await pool.delete("arq:queue")
        assert await tasks.poll_due(ctx) == tasks.POLL_ROOM
    finally:
        await shutdown(ctx)
        await pool.aclose()


async def test_a_tick_keeps_admitting_polls_as_the_queue_drains(
    tmp_path: Path, redis_url: str
) -> None:
    """12 bindings due and a queue that a fast worker keeps draining: one tick requests all
    12 (POLL_ROOM at a time, never more ahead of a push), not just the first POLL_ROOM."""
    pool = await create_pool(queue.redis_settings(redis_url))
    ctx: dict[str, Any] = {"redis": pool}
    try:
        await startup(ctx, _many_bindings(tmp_path / "config", redis_url, 12, every="10m"))
        tick = asyncio.create_task(tasks.poll_due(ctx))
        most = 0
        while not tick.done():  # a worker that takes every queued job at once
            most = max(most, await queue.ready_reconciles(pool))
            await pool.delete("arq:queue")
            await asyncio.sleep(0.01)
        assert await tick == 12
        assert most <= tasks.POLL_ROOM
    finally:
        await shutdown(ctx)
        await pool.aclose()


def _idle_config(root: Path, redis_url: str, count: int) -> Config:
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\n")
    bindings = "".join(
        f"  - {{id: b{i}, dingtalk_user: u-{i}, caldav: {{url: 'http://127.0.0.1:9/{i}/'}}}}\n"
        for i in range(count)
    )
    people = "".join(f"  - {{union_id: u-{i}, email: u{i}@idle.example}}\n" for i in range(count))
    head = (
        "id: idle\ndingtalk: {api_base: 'http://127.0.0.1:9', app_key: k, app_secret: s,"
        f" callback: {{token: t, aes_key: {AES}}}}}\n"
    )
    text = f"{head}directory:\n{people}bindings:\n{bindings}"
    (root / "tenants" / "idle.yaml").write_text(text)
    return load_config(root, {})


async def _commands(pool: ArqRedis) -> int:
    stats = await pool.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def _tick_cost(tmp_path: Path, redis_url: str, count: int) -> tuple[int, int]:
    """Redis commands of the first revive tick (a full sweep) and of the second."""
    pool = await create_pool(queue.redis_settings(redis_url))
    ctx: dict[str, Any] = {"redis": pool}
    await startup(ctx, _idle_config(tmp_path / f"c{count}", redis_url, count))
    try:
        costs = []
        for _ in range(2):
            before = await _commands(pool)
            assert await settings.revive_orphans(ctx) == 0
            costs.append(await _commands(pool) - before)
        return costs[0], costs[1]
    finally:
        await shutdown(ctx)
        await pool.aclose()


async def test_a_revive_tick_does_not_touch_idle_bindings(tmp_path: Path, redis_url: str) -> None:
    """After the start-up sweep (one script per binding), a revive tick costs the same
    Redis commands with 5 or 500 idle bindings: it reads only the runs in flight."""
    small_sweep, small_tick = await _tick_cost(tmp_path, redis_url, 5)
    big_sweep, big_tick = await _tick_cost(tmp_path, redis_url, 500)
    assert big_sweep >= 500 > small_sweep
    assert big_tick == small_tick <= 5
