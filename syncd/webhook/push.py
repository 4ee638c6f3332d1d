"""``POST /webdav-push/{tenant}/{binding}/{token}``: a CalDAV server's WebDAV-Push message.

The URL is the binding's push resource, registered with the server by the workers
(:mod:`syncd.worker.push`); ``token`` is the binding's secret. The message body (RFC 8291
encrypted) is read and not decrypted: that the URL is right is all it needs to say, and
the reconcile it queues is idempotent and coalesced. An unknown tenant, binding or token
is refused with 404 (the server then drops that subscription), one log line and a metric;
201 (what a Web Push service answers) once the reconcile is queued; 503 when Redis cannot
take it (the server does not retry, so the binding's next poll finds the change).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from syncd import queue
from syncd.delivery.served import served_tenant
from syncd.errors import StoreError
from syncd.model import BindingRef
from syncd.observability import WEBDAV_PUSHES
from syncd.store import webdav_push
from syncd.webhook.keys import ARQ_KEY, config_of

log = structlog.get_logger(__name__)

REASON = "caldav-push"
"""The reconcile request's reason (quiet: it does not by itself list DingTalk)."""
MAX_BODY = 8192
"""A push message is a few hundred bytes; anything larger is not read."""


async def message(request: web.Request) -> web.Response:
    """Queue a reconcile of the binding whose push resource this is."""
    info = request.match_info
    ref = BindingRef(info["tenant"], info["binding"])
    config, pool = config_of(request.app), request.app[ARQ_KEY]
    tenant = config.tenants.get(ref.tenant)
    try:
        served = await served_tenant(pool, tenant) if tenant is not None else None
        found = [b for b in served.bindings if b.id == ref.binding] if served else []
        known = (
            config.settings.webdav_push is not None
            and any(b.caldav is not None for b in found)
            and await webdav_push.token_matches(pool, ref, info["token"])
        )
        if not known:
            return _refused(ref, tenant is not None)
        await request.content.read(MAX_BODY)
        await queue.request_reconcile(pool, ref, REASON)
    except StoreError as exc:
        WEBDAV_PUSHES.labels(ref.tenant, "store_unavailable").inc()
        log.error("webdav_push_not_stored", tenant=ref.tenant, binding=ref.binding, error=str(exc))
        return web.json_response({"error": "store_unavailable"}, status=503)
    WEBDAV_PUSHES.labels(ref.tenant, "queued").inc()
    log.info("webdav_push_queued", tenant=ref.tenant, binding=ref.binding)
    return web.Response(status=201)


def _refused(ref: BindingRef, tenant_known: bool) -> web.Response:
    label = ref.tenant if tenant_known else "_unknown"
    WEBDAV_PUSHES.labels(label, "rejected_unknown").inc()
    log.warning(
        "webdav_push_rejected",
        tenant=label,
        binding=ref.binding if tenant_known else None,
        reason="unknown binding or token",
    )
    return web.json_response({"error": "unknown", "reason": "unknown binding or token"}, status=404)
