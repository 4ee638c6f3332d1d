"""The poll schedule (a Redis sorted set): atomic across workers, adaptive, follows reloads.

Time is injected (``now``), never slept: each test drives the scheduler's clock itself.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest
from redis.asyncio import Redis

from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.store import schedule as store
from syncd.worker.schedule import RESYNC_S, PollScheduler, after_run, take_polls

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
T0 = 1_800_000_000.0


def _config(root: Path, bindings: dict[str, str]) -> Config:
    """One tenant ``acme`` with CalDAV bindings ``{id: poll_interval}``."""
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "syncd.yaml").write_text("redis_url: redis://127.0.0.1:9/0\n")
    listed = "".join(
        f'  - {{id: {b}, dingtalk_user: u-alice, caldav: {{url: "http://127.0.0.1:9/{b}/"}}, '
        f"poll_interval: {every}}}\n"
        for b, every in bindings.items()
    )
    (root / "tenants" / "acme.yaml").write_text(
        "id: acme\ndingtalk:\n  api_base: http://127.0.0.1:9\n  app_key: k\n  app_secret: s\n"
        f"  callback: {{token: t, aes_key: {AES}}}\n"
        "directory:\n  - {union_id: u-alice, email: alice@acme.example}\n"
        f"bindings:\n{listed}"
    )
    return load_config(root, {})


@pytest.fixture
async def two_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two Redis connections, as two worker processes have."""
    a, b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_two_workers_never_take_a_binding_twice_per_period(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """40 idle bindings (30 s interval, so 60 s when idle), two workers ticking every second
    at the same instants for 4 simulated minutes: each binding is polled once at the start
    and then exactly once per 60 s period, and the polls spread over the ticks."""
    config = _config(tmp_path, {f"b{i:02d}": "30s" for i in range(40)})
    workers = [(client, PollScheduler()) for client in two_clients]
    polls: dict[BindingRef, list[int]] = defaultdict(list)
    per_tick = []
    for tick in range(241):
        now = T0 + tick
        got = await asyncio.gather(*(take_polls(c, s, config, now, 1000) for c, s in workers))
        taken = [ref for batch in got for ref, _ in batch]
        assert len(taken) == len(set(taken))  # never by both workers
        for ref in taken:
            polls[ref].append(tick)
        per_tick.append(len(taken))
    assert per_tick[0] == 40  # new bindings are due at once
    for ticks in polls.values():
        assert ticks[0] == 0
        assert ticks[1] <= 60  # its first period boundary (its own phase)
        assert [b - a for a, b in pairwise(ticks[1:])] == [60, 60, 60]
    assert max(per_tick[1:]) <= 6  # spread over the period (lockstep would be 40)


async def test_a_change_makes_polls_fast_then_they_slow_down(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """After a run that applied a change the binding is due within 2 s and then polled every
    ~2 s; 10 minutes later every 30 s again, and after an idle hour every 60 s."""
    redis = two_clients[0]
    config = _config(tmp_path, {"alice": "30s"})
    ref, sched = BindingRef("acme", "alice"), PollScheduler()

    async def gaps(start: float, seconds: int) -> list[float]:
        """Seconds between polls from ``start`` on, after the first (overdue) one realigns."""
        times = [t for t in range(int(start), int(start) + seconds) if await _polled(t)]
        return [b - a for a, b in pairwise(times[1:])]

    async def _polled(t: float) -> bool:
        return bool(await take_polls(redis, sched, config, t, 10))

    assert await _polled(T0)  # new: due at once; then idle (no change seen): 60 s
    assert set(await gaps(T0 + 1, 150)) == {60}
    await after_run(redis, config, ref, 1, T0 + 155)
    assert (await store.next_due(redis, ref) or 0) <= T0 + 157
    assert set(await gaps(T0 + 156, 100)) == {2}
    assert set(await gaps(T0 + 750, 200)) == {30}
    assert set(await gaps(T0 + 3850, 300)) == {60}


async def test_a_run_without_changes_leaves_the_schedule_alone(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """An idle run (no change applied) neither remembers a change nor moves the next poll."""
    redis = two_clients[0]
    config = _config(tmp_path, {"alice": "30s"})
    ref = BindingRef("acme", "alice")
    await take_polls(redis, PollScheduler(), config, T0, 10)
    before = await store.next_due(redis, ref)
    await after_run(redis, config, ref, 0, T0 + 1)
    assert await store.next_due(redis, ref) == before
    assert await store.last_changes(redis, [ref]) == [None]


async def test_reload_adds_removes_and_pulls_in_members(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """A reload adds new bindings (due at once), drops removed ones, keeps the next poll of
    those that stay, and pulls in one whose interval was shortened."""
    redis = two_clients[0]
    sched = PollScheduler()
    old = _config(tmp_path / "a", {"keep": "30s", "gone": "30s", "shorter": "1h"})
    assert len(await take_polls(redis, sched, old, T0, 10)) == 3
    keep = await store.next_due(redis, BindingRef("acme", "keep"))
    new = _config(tmp_path / "b", {"keep": "30s", "new": "30s", "shorter": "30s"})
    polled = await take_polls(redis, sched, new, T0 + 1, 10)
    assert [ref.binding for ref, _ in polled] == ["new"]
    members = {r.binding for r in await store.scheduled(redis)}
    assert members == {"keep", "new", "shorter"}
    assert await store.next_due(redis, BindingRef("acme", "keep")) == keep
    shorter = await store.next_due(redis, BindingRef("acme", "shorter"))
    assert shorter is not None
    assert shorter <= T0 + 1 + 60  # was up to 2 h away


async def test_a_taker_that_dies_loses_no_binding(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """A binding taken but never rescheduled (its worker died) is due again after the hold."""
    redis = two_clients[0]
    config = _config(tmp_path, {"alice": "30s"})
    await PollScheduler().follow(redis, config, T0)
    assert await store.take_due(redis, T0, 10) == [BindingRef("acme", "alice")]
    assert await store.take_due(redis, T0 + store.CLAIM_HOLD_S - 1, 10) == []
    assert await store.take_due(redis, T0 + store.CLAIM_HOLD_S, 10) == [BindingRef("acme", "alice")]


def test_members_round_trip_odd_ids() -> None:
    """Tenant and binding ids with ``/``, ``%`` and spaces survive the member encoding."""
    ref = BindingRef("a/b", "c% d/e")
    assert store.ref_of(store.member(ref)) == ref


async def test_a_schedule_lost_with_redis_data_comes_back(
    tmp_path: Path, two_clients: tuple[Redis, Redis]
) -> None:
    """If Redis loses the schedule (a restart without persistence), a worker puts every
    binding back within RESYNC_S, due at once."""
    redis = two_clients[0]
    config = _config(tmp_path, {"alice": "30s", "bob": "30s"})
    sched = PollScheduler()
    assert len(await take_polls(redis, sched, config, T0, 10)) == 2
    await redis.flushall()
    assert await take_polls(redis, sched, config, T0 + 100, 10) == []
    back = await take_polls(redis, sched, config, T0 + RESYNC_S, 10)
    assert sorted(ref.binding for ref, _ in back) == ["alice", "bob"]
