"""Route handlers: verify → decrypt → dedupe → mark dirty + enqueue → encrypted ack.

The callback handler answers ``success`` only after every affected binding is safely
marked dirty in Redis; when Redis is unreachable, or the process is shutting down and
can no longer queue, it answers 503 so DingTalk retries.
It never talks to DingTalk or CalDAV and never imports the sync engine.
"""

from __future__ import annotations

import json
import time

import structlog
from aiohttp import web

from syncd import crypto
from syncd.config import Callback, Tenant
from syncd.delivery.intake import queue_change
from syncd.errors import (
    BadEnvelope,
    BadPayload,
    BadSignature,
    StaleTimestamp,
    StoreError,
    StoreUnavailable,
)
from syncd.observability import CALLBACKS
from syncd.queue import ping
from syncd.webhook.keys import ARQ_KEY, STATE_KEY, config_of
from syncd.webhook.payload import CALENDAR_CHANGE, CHECK_URL, CallbackEvent, parse_event

log = structlog.get_logger(__name__)


def _reject(tenant: str, status: int, outcome: str, reason: str) -> web.Response:
    CALLBACKS.labels(tenant, f"rejected_{outcome}").inc()
    log.warning("callback_rejected", tenant=tenant, status=status, reason=reason)
    return web.json_response({"error": outcome, "reason": reason}, status=status)


async def callback(request: web.Request) -> web.Response:
    """``POST /callbacks/{tenant}``: DingTalk's event subscription URL."""
    tenant_id = request.match_info["tenant"]
    tenant = config_of(request.app).tenants.get(tenant_id)
    if tenant is None:
        return _reject("_unknown", 404, "unknown_tenant", f"no tenant {tenant_id!r}")
    cb = tenant.dingtalk.callback
    if cb is None:  # delivery: stream without a callback subscription
        return _reject(tenant_id, 404, "no_callback", f"tenant {tenant_id!r} has no callback")
    opened = await _open(request, tenant, cb)
    if isinstance(opened, web.Response):
        return opened
    try:
        outcome = await _handle(request, tenant_id, opened)
    except StoreError as exc:  # unreachable (StoreUnavailable) or refusing: DingTalk retries
        return _not_stored(tenant_id, opened, exc)
    CALLBACKS.labels(tenant_id, outcome).inc()
    reply = crypto.reply_success(
        cb.token.get_secret_value(), cb.aes_key.get_secret_value(), tenant.owner_key
    )
    return web.json_response(reply)


def _not_stored(tenant_id: str, event: CallbackEvent, exc: StoreError) -> web.Response:
    """503: nothing was acknowledged that is not queued; DingTalk retries the push."""
    outcome = "store_unavailable" if isinstance(exc, StoreUnavailable) else "store_error"
    CALLBACKS.labels(tenant_id, outcome).inc()
    log.error("callback_not_stored", tenant=tenant_id, push_id=event.push_id, error=str(exc))
    return web.json_response({"error": outcome}, status=503)


async def _open(request: web.Request, tenant: Tenant, cb: Callback) -> CallbackEvent | web.Response:
    """Size, signature, timestamp and envelope checks; the parsed push or a 4xx answer."""
    settings = config_of(request.app).settings
    limit = settings.callback_max_body
    if request.content_length is not None and request.content_length > limit:
        return _reject(tenant.id, 413, "too_large", f"body over {limit} bytes")
    query = request.query
    signature = query.get("msg_signature") or query.get("signature")
    timestamp = query.get("timeStamp") or query.get("timestamp")
    nonce = query.get("nonce")
    if not (signature and timestamp and nonce):
        return _reject(tenant.id, 400, "malformed", "signature, timestamp and nonce required")
    body = await _read_body(request, limit)
    if body is None:
        return _reject(tenant.id, 413, "too_large", f"body over {limit} bytes")
    try:
        _check_timestamp(timestamp, settings.callback_max_skew)
        plaintext = crypto.open_callback(
            cb.token.get_secret_value(),
            cb.aes_key.get_secret_value(),
            tenant.owner_key,
            signature=signature,
            timestamp=timestamp,
            nonce=nonce,
            encrypt=_encrypted_field(body),
        )
        return parse_event(plaintext)
    except (BadSignature, StaleTimestamp) as exc:
        return _reject(tenant.id, 403, type(exc).__name__.lower(), str(exc))
    except (BadEnvelope, BadPayload) as exc:
        return _reject(tenant.id, 400, type(exc).__name__.lower(), str(exc))


async def _handle(request: web.Request, tenant_id: str, event: CallbackEvent) -> str:
    """Queue what the push asks for; returns the outcome label for metrics."""
    if event.event_type == CHECK_URL:
        log.info("callback_check_url", tenant=tenant_id)
        return "check_url"
    if event.event_type == CALENDAR_CHANGE and request.app[STATE_KEY].closed:
        raise StoreUnavailable("shutting down: the Redis client is closed")
    tenant = config_of(request.app).tenants[tenant_id]
    return await queue_change(request.app[ARQ_KEY], tenant, event, "callback")


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds ``limit`` bytes.

    ``StreamReader.read(n)`` returns whatever has arrived, which for a chunked or slow
    body is only a part of it; read to the end instead.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _check_timestamp(timestamp: str, max_skew_s: float) -> None:
    """Reject pushes whose timestamp (ms since the epoch) is too far from now."""
    try:
        sent = int(timestamp) / 1000
    except (ValueError, OverflowError) as exc:  # OverflowError: more digits than a float holds
        raise StaleTimestamp(f"timestamp {timestamp!r} is not a number") from exc
    skew = abs(time.time() - sent)
    if skew > max_skew_s:
        raise StaleTimestamp(f"timestamp is {skew:.0f}s away from now (max {max_skew_s:.0f}s)")


def _encrypted_field(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadPayload("body is not JSON") from exc
    value = data.get("encrypt") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise BadPayload('body has no "encrypt" string')
    return value


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: configuration loaded, Redis reachable, not shutting down."""
    if request.app[STATE_KEY].draining:
        return web.json_response({"status": "shutting_down"}, status=503)
    try:
        await ping(request.app[ARQ_KEY])
    except StoreUnavailable as exc:
        return web.json_response({"status": "unavailable", "redis": str(exc)}, status=503)
    return web.json_response({"status": "ready", "tenants": len(config_of(request.app).tenants)})
