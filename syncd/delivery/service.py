"""Run event delivery inside ``syncd worker`` / ``syncd run``: Stream connections and failedResults.

* Every ``delivery: stream`` tenant gets one Stream connection across the whole fleet: each
  worker process competes for the tenant's Redis lease (``syncd:<tenant>:stream``,
  :mod:`syncd.delivery.lease`); the holder runs :func:`~syncd.delivery.stream.stream_forever`.
  When it dies its lease expires after :data:`LEASE_TTL_S` and another process connects
  within :data:`LEASE_RETRY_S` more; what DingTalk sent meanwhile is redelivered (un-ACKed).
* Every ``delivery: http`` tenant has DingTalk's failed pushes pulled at start-up and every
  :data:`FAILED_PERIOD_S` (:mod:`syncd.delivery.failed`).

Both keep going through Redis and DingTalk outages (logged, retried); nothing here is needed
for the worker's own jobs, so it runs beside :func:`syncd.worker.supervisor.supervise`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp
import structlog
from arq.connections import ArqRedis

from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config, Tenant
from syncd.delivery import failed
from syncd.delivery.lease import RedisLease, while_held
from syncd.delivery.stream import stream_forever
from syncd.errors import StoreError, SyncdError
from syncd.observability import STREAM_CONNECTED
from syncd.store.connection import connect, redis_settings
from syncd.store.keys import STREAM, tenant_key
from syncd.store.ratelimit import RequestPace
from syncd.worker.wiring import dingtalk_client

log = structlog.get_logger(__name__)

LEASE_TTL_S = 5.0
LEASE_RETRY_S = 1.0
FAILED_PERIOD_S = 60.0
REDIS_TIMEOUT_S = 2.0
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class DeliveryTiming:
    """How fast a dead holder is replaced and how often failed pushes are pulled."""

    lease_ttl_s: float = LEASE_TTL_S
    lease_retry_s: float = LEASE_RETRY_S
    failed_period_s: float = FAILED_PERIOD_S


def stream_tenants(config: Config) -> list[Tenant]:
    """Tenants whose events arrive over Stream."""
    return [t for t in config.tenants.values() if t.dingtalk.delivery == "stream"]


def http_tenants(config: Config) -> list[Tenant]:
    """Tenants whose events arrive as HTTP pushes (and may need failedResults pulls)."""
    return [t for t in config.tenants.values() if t.dingtalk.delivery == "http"]


async def run_delivery(
    config: Config, stop: asyncio.Event, timing: DeliveryTiming | None = None
) -> None:
    """Hold Stream connections and pull failed pushes until ``stop`` is set."""
    timing = timing or DeliveryTiming()
    streams, pulls = stream_tenants(config), http_tenants(config)
    if not streams and not pulls:
        return
    pool = connect(redis_settings(config.settings.redis_url), socket_timeout=REDIS_TIMEOUT_S)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    for tenant in streams:  # every process reports 0 until it holds the connection
        STREAM_CONNECTED.labels(tenant.id).set(0)
    holds = [asyncio.create_task(_hold(session, pool, t, stop, timing)) for t in streams]
    pulls_ = [asyncio.create_task(_pull_loop(session, pool, t, stop, timing)) for t in pulls]
    for task in (*holds, *pulls_):
        task.add_done_callback(_report_crash)
    log.info("delivery_started", stream_tenants=len(streams), http_tenants=len(pulls))
    try:
        await stop.wait()
        if holds:  # they close their connections and release their leases themselves
            await asyncio.wait(holds, timeout=STOP_GRACE_S)
    finally:
        for task in (*holds, *pulls_):
            task.cancel()
        await asyncio.gather(*holds, *pulls_, return_exceptions=True)
        await session.close()
        with contextlib.suppress(Exception):
            await pool.aclose()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("delivery_task_failed", error=repr(task.exception()))


async def _hold(
    session: aiohttp.ClientSession,
    pool: ArqRedis,
    tenant: Tenant,
    stop: asyncio.Event,
    timing: DeliveryTiming,
) -> None:
    lease = RedisLease(pool, tenant_key(tenant.id, STREAM), timing.lease_ttl_s)
    await while_held(
        lease,
        lambda: stream_forever(session, pool, tenant),
        stop,
        retry_s=timing.lease_retry_s,
        name=f"stream:{tenant.id}",
    )


async def _pull_loop(
    session: aiohttp.ClientSession,
    pool: ArqRedis,
    tenant: Tenant,
    stop: asyncio.Event,
    timing: DeliveryTiming,
) -> None:
    client = dingtalk_client(tenant, session, TokenCache(pool), RequestPace(pool))
    first = True
    while not stop.is_set():
        try:
            if first or await failed.due(pool, tenant, timing.failed_period_s):
                await failed.pull(pool, tenant, client)
            first = False
        except SyncdError as exc:  # DingTalk or Redis trouble: try again next period
            kind = "store" if isinstance(exc, StoreError) else "dingtalk"
            log.warning("failed_results_pull_failed", tenant=tenant.id, kind=kind, error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timing.failed_period_s)
