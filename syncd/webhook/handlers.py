"""Route handlers: verify → decrypt → dedupe → mark dirty + enqueue → encrypted ack.

The ack is the tenant's sealed ``success`` reply, re-sealed at most once a second
(:mod:`syncd.webhook.reply`).

The callback handler answers ``success`` only after every affected binding is safely
marked dirty in Redis; when Redis is unreachable, or the process is shutting down and
can no longer queue, it answers 503 so DingTalk retries.
It never talks to DingTalk or CalDAV and never imports the sync engine.

Every refusal is an exception from :mod:`syncd.errors`; :data:`ANSWERS` is the one table
that turns them into responses (status, outcome label of the metric, log line).
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
    BodyTooLarge,
    MissingParameters,
    NoCallback,
    StaleTimestamp,
    StoreError,
    StoreUnavailable,
    SyncdError,
    UnknownTenant,
)
from syncd.observability import CALLBACKS
from syncd.queue import ping
from syncd.webhook.keys import ARQ_KEY, REPLY_KEY, STATE_KEY, config_of
from syncd.webhook.payload import CALENDAR_CHANGE, CHECK_URL, CallbackEvent, parse_event

log = structlog.get_logger(__name__)


ANSWERS: tuple[tuple[type[SyncdError], int, str | None], ...] = (
    (UnknownTenant, 404, "unknown_tenant"),
    (NoCallback, 404, "no_callback"),
    (BodyTooLarge, 413, "too_large"),
    (MissingParameters, 400, "malformed"),
    (BadSignature, 403, None),
    (StaleTimestamp, 403, None),
    (BadEnvelope, 400, None),
    (BadPayload, 400, None),
    (StoreUnavailable, 503, "store_unavailable"),
    (StoreError, 503, "store_error"),
)
"""Error class -> (HTTP status, outcome); the first class the error is an instance of wins.
An outcome of None is the error's class name in lower case (``badpadding``). 4xx: the push
is refused for good (metric ``rejected_<outcome>``); 503: nothing was queued, DingTalk
retries. Any other error is not the caller's fault and propagates (500)."""


async def callback(request: web.Request) -> web.Response:
    """``POST /callbacks/{tenant}``: DingTalk's event subscription URL."""
    tenant_id = request.match_info["tenant"]
    event: CallbackEvent | None = None
    try:
        tenant = config_of(request.app).tenants.get(tenant_id)
        if tenant is None:
            raise UnknownTenant(f"no tenant {tenant_id!r}")
        cb = tenant.dingtalk.callback
        if cb is None:  # delivery: stream without a callback subscription
            raise NoCallback(f"tenant {tenant_id!r} has no callback")
        event = await _open(request, tenant, cb)
        outcome = await _handle(request, tenant_id, event)
    except SyncdError as exc:
        return _answer(tenant_id, exc, event)
    CALLBACKS.labels(tenant_id, outcome).inc()
    credentials = (cb.token.get_secret_value(), cb.aes_key.get_secret_value(), tenant.owner_key)
    body = request.app[REPLY_KEY].body(tenant_id, credentials, time.time())
    return web.Response(body=body, content_type="application/json")


def _answer(tenant_id: str, exc: SyncdError, event: CallbackEvent | None) -> web.Response:
    """The response to a refused push (see :data:`ANSWERS`), counted and logged."""
    found = next(((s, o) for cls, s, o in ANSWERS if isinstance(exc, cls)), None)
    if found is None:
        raise exc
    status, outcome = found[0], found[1] or type(exc).__name__.lower()
    if status >= 500:  # nothing was acknowledged that is not queued: DingTalk retries
        CALLBACKS.labels(tenant_id, outcome).inc()
        push_id = event.push_id if event is not None else None
        log.error("callback_not_stored", tenant=tenant_id, push_id=push_id, error=str(exc))
        return web.json_response({"error": outcome}, status=status)
    label = "_unknown" if isinstance(exc, UnknownTenant) else tenant_id
    CALLBACKS.labels(label, f"rejected_{outcome}").inc()
    log.warning("callback_rejected", tenant=label, status=status, reason=str(exc))
    return web.json_response({"error": outcome, "reason": str(exc)}, status=status)


async def _open(request: web.Request, tenant: Tenant, cb: Callback) -> CallbackEvent:
    """Size, signature, timestamp and envelope checks; the parsed push."""
    settings = config_of(request.app).settings
    limit = settings.callback_max_body
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    query = request.query
    signature = query.get("msg_signature") or query.get("signature")
    timestamp = query.get("timeStamp") or query.get("timestamp")
    nonce = query.get("nonce")
    if not (signature and timestamp and nonce):
        raise MissingParameters("signature, timestamp and nonce required")
    body = await _read_body(request, limit)
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


async def _handle(request: web.Request, tenant_id: str, event: CallbackEvent) -> str:
    """Queue what the push asks for; returns the outcome label for metrics."""
    if event.event_type == CHECK_URL:
        log.info("callback_check_url", tenant=tenant_id)
        return "check_url"
    if event.event_type == CALENDAR_CHANGE and request.app[STATE_KEY].closed:
        raise StoreUnavailable("shutting down: the Redis client is closed")
    tenant = config_of(request.app).tenants[tenant_id]
    return await queue_change(request.app[ARQ_KEY], tenant, event, "callback")


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole body; ``BodyTooLarge`` as soon as it exceeds ``limit`` bytes.

    ``StreamReader.read(n)`` returns whatever has arrived, which for a chunked or slow
    body is only a part of it; read to the end instead.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
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
