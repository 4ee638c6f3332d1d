"""The queue's small Redis marks: push dedupe, poll phases, dirty marks, job ids, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.connections import ArqRedis

from syncd import queue
from syncd.errors import StoreUnavailable
from syncd.model import BindingRef
from syncd.store import keys
from syncd_lab.stack.ports import free_port

REF = BindingRef("acme", "alice-work")


async def test_push_dedupe(pool: ArqRedis) -> None:
    """A push id is first only once per tenant, for the ttl; another tenant has its own ids."""
    assert await queue.first_delivery(pool, "acme", "push-1")
    assert not await queue.first_delivery(pool, "acme", "push-1")
    assert await queue.first_delivery(pool, "globex", "push-1")
    assert 86000 < await pool.ttl(keys.push_key("acme", "push-1")) <= 86400
    assert await queue.first_delivery(pool, "acme", "push-2", ttl_s=1)
    await asyncio.sleep(1.1)
    assert await queue.first_delivery(pool, "acme", "push-2")


async def _task(ctx: dict[str, Any], tenant: str, binding: str, reason: str) -> None:
    """A stand-in reconcile coroutine."""


async def test_reconcile_function_keeps_no_result() -> None:
    """The worker's Function is named reconcile_binding and keeps no result."""
    fn = queue.reconcile_function(_task, timeout_s=60)
    assert fn.name == queue.RECONCILE_TASK == "reconcile_binding"
    assert fn.keep_result_s == 0
    assert fn.timeout_s == 60


async def test_job_ids_differ_per_binding_and_generation() -> None:
    """Job ids never collide across tenants, bindings or generations."""
    ids = {
        queue.job_id_for(BindingRef("a:b", "c")),
        queue.job_id_for(BindingRef("a", "b:c")),
        queue.job_id_for(BindingRef("a", "b:c"), 1),
        queue.job_id_for(BindingRef("b", "b:c"), 1),
    }
    assert len(ids) == 4


async def test_unreachable_redis_is_store_unavailable() -> None:
    """request_reconcile against a Redis that is down raises StoreUnavailable, nothing else."""
    down = ArqRedis(port=free_port(), socket_connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable, match="request_reconcile"):
            await queue.request_reconcile(down, REF, "x")
        with pytest.raises(StoreUnavailable):
            await queue.first_delivery(down, "acme", "p")
    finally:
        await down.aclose()


async def test_seen_delivery_only_after_first_delivery(pool: ArqRedis) -> None:
    """seen_delivery reads without marking; it turns true once first_delivery accepted the id."""
    assert not await queue.seen_delivery(pool, "acme", "push-9")
    assert not await queue.seen_delivery(pool, "acme", "push-9")
    assert await queue.first_delivery(pool, "acme", "push-9")
    assert await queue.seen_delivery(pool, "acme", "push-9")
    assert not await queue.seen_delivery(pool, "globex", "push-9")


def test_next_poll_keeps_each_bindings_phase() -> None:
    """Next poll times fall on a binding's own phase-shifted period boundaries: one period
    apart, strictly after ``now``, and different bindings on different boundaries."""
    now = 1_000_000.5
    at = queue.next_poll_at(REF, 30, now)
    assert now < at <= now + 30
    assert queue.next_poll_at(REF, 30, at) == pytest.approx(at + 30)
    assert queue.next_poll_at(REF, 30, at - 0.001) == pytest.approx(at)
    others = {round(queue.next_poll_at(BindingRef("acme", f"b{n}"), 30, now)) for n in range(50)}
    assert len(others) > 15  # spread over the interval, not one instant (lockstep)


async def test_mark_dirty_makes_rerun_queue_a_job(pool: ArqRedis) -> None:
    """Without a mark rerun_if_dirty queues nothing; after mark_dirty it queues one job."""
    assert not await queue.rerun_if_dirty(pool, REF)
    await queue.mark_dirty(pool, REF)
    assert await queue.rerun_if_dirty(pool, REF)
    assert not await queue.rerun_if_dirty(pool, REF)  # coalesced into the queued job
    assert await queue.take_dirty(pool, REF)
    assert not await queue.take_dirty(pool, REF)


async def test_binding_lock_starts_a_generation_and_is_truthy(pool: ArqRedis) -> None:
    """Trying the lock bumps the generation, taken or not; the lock's truth says if taken."""
    gen = keys.binding_key(REF, keys.GENERATION)
    async with queue.binding_lock(pool, REF) as first:
        assert first
        async with queue.binding_lock(pool, REF) as second:
            assert not second
    assert await pool.get(gen) == b"2"


async def test_request_queues_the_generation_job(pool: ArqRedis) -> None:
    """A request queues the reconcile task under the current generation's job id, args intact."""
    assert await queue.request_reconcile(pool, REF, "callback")
    jobs = await pool.queued_jobs()
    assert [(j.job_id, j.function, j.args) for j in jobs] == [
        (queue.job_id_for(REF, 0), "reconcile_binding", ("acme", "alice-work", "callback"))
    ]
