"""Queue one ``calendar_event_change``: dedupe, dirty mark + enqueue per affected binding.

Shared by every way an event arrives — the webhook (``POST /callbacks/{tenant}``), a Stream
connection (:mod:`syncd.delivery.stream`) and the failedResults pull
(:mod:`syncd.delivery.failed`) — so that each acknowledges an event only once its work is
stored. Raises :class:`~syncd.errors.StoreError` when Redis cannot take it.
"""

from __future__ import annotations

import structlog
from arq.connections import ArqRedis

from syncd.config import Tenant
from syncd.delivery.served import served_tenant
from syncd.model import BindingRef
from syncd.queue import queue_delivery
from syncd.webhook.payload import CALENDAR_CHANGE, CallbackEvent

log = structlog.get_logger(__name__)


async def queue_change(pool: ArqRedis, tenant: Tenant, event: CallbackEvent, source: str) -> str:
    """Queue what the event asks for; returns the outcome label for metrics.

    ``source`` (``callback``, ``stream``, ``failed``) prefixes the reconcile reason.
    """
    if event.event_type != CALENDAR_CHANGE:
        log.info(f"{source}_ignored", tenant=tenant.id, event_type=event.event_type)
        return "ignored"
    affected = set(event.union_ids)
    tenant = await served_tenant(pool, tenant)  # bindings of its templates included
    # ICS feed bindings follow their feed's refresh: a DingTalk change never fetches a feed.
    refs = [
        BindingRef(tenant.id, b.id)
        for b in tenant.bindings
        if b.dingtalk_user in affected and b.caldav is not None
    ]
    # One round trip: dedupe, dirty marks + jobs; the push is remembered only after its
    # work is stored, so a retry after a failure re-queues.
    reason = f"{source}:{event.change_type or 'change'}"
    queued = await queue_delivery(pool, tenant.id, event.push_id, refs, reason)
    if queued is None:
        log.info(f"{source}_duplicate", tenant=tenant.id, push_id=event.push_id)
        return "duplicate"
    # The one info line of a push: its bindings, and those that got a new reconcile job
    # (the others were coalesced into a job already queued).
    log.info(
        f"{source}_queued",
        tenant=tenant.id,
        push_id=event.push_id,
        change=event.change_type,
        event_id=event.calendar_event_id,
        bindings=[r.binding for r in refs],
        new_jobs=[r.binding for r, new in zip(refs, queued, strict=True) if new],
    )
    return "queued" if refs else "no_binding"
