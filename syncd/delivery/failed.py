"""Pull pushes DingTalk failed to deliver (``GET /v1.0/event/callbacks/failedResults``).

For each HTTP-delivery tenant: at start-up, then every ``period`` seconds (one process of
the fleet per period, by a ``SET NX PX`` mark), page through the failed pushes (≤ 200 per
answer while ``hasMore``) and queue each ``calendar_event_change`` as the webhook would
(:func:`syncd.delivery.intake.queue_change`; dedupe on its ``BizId``). DingTalk removes what
it hands out, so Redis is pinged before each pull: a pull never starts when the queue
cannot take it. A push lost anyway (Redis failing in the middle of a page) is still
caught by the binding's poll. A malformed entry is logged, counted and skipped.
"""

from __future__ import annotations

import structlog
from arq.connections import ArqRedis

from syncd.adapters.dingtalk.client import DingTalkClient
from syncd.config import Tenant
from syncd.delivery.intake import queue_change
from syncd.errors import BadPayload
from syncd.observability import FAILED_PULLED
from syncd.queue import ping
from syncd.store.guard import redis_errors
from syncd.store.keys import FAILED_PULL, tenant_key
from syncd.webhook.payload import parse_event

log = structlog.get_logger(__name__)

MAX_PAGES = 50
"""At most this many answers (10,000 pushes) per pull; the rest wait for the next one."""


async def due(pool: ArqRedis, tenant: Tenant, period_s: float) -> bool:
    """True for the one process of the fleet that pulls for ``tenant`` this period."""
    ms = max(1, int(period_s * 1000 * 0.9))
    with redis_errors("failed_pull_mark"):
        return bool(await pool.set(tenant_key(tenant.id, FAILED_PULL), "1", nx=True, px=ms))


async def pull(pool: ArqRedis, tenant: Tenant, client: DingTalkClient) -> int:
    """Queue every failed push DingTalk has for ``tenant``; returns how many were queued."""
    await ping(pool)  # StoreUnavailable: do not fetch (and so remove) what cannot be queued
    queued = 0
    for _ in range(MAX_PAGES):
        page = await client.failed_callbacks()
        for item in page.items:
            queued += await _one(pool, tenant, item)
        if not page.has_more:
            break
    if queued:
        log.info("failed_results_queued", tenant=tenant.id, count=queued)
    return queued


async def _one(pool: ArqRedis, tenant: Tenant, item: dict[str, object]) -> int:
    data = item.get("callBackData")
    try:
        if not isinstance(data, str):
            raise BadPayload("failedResults entry without a callBackData string")
        event = parse_event(data)
    except BadPayload as exc:
        FAILED_PULLED.labels(tenant.id, "rejected").inc()
        log.warning("failed_result_rejected", tenant=tenant.id, reason=str(exc))
        return 0
    outcome = await queue_change(pool, tenant, event, "failed")
    FAILED_PULLED.labels(tenant.id, outcome).inc()
    return 1 if outcome == "queued" else 0
