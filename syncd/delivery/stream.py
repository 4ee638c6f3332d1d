"""The Stream client of one tenant: an outbound WebSocket to DingTalk, no public route.

One connection: ``POST {api_base}/v1.0/gateway/connections/open`` with the app's
credentials and ``{"type": "EVENT", "topic": "*"}`` → ``endpoint`` + single-use
``ticket`` → WebSocket to ``endpoint?ticket=``. On it every EVENT frame is parsed and
queued exactly like a webhook push (:func:`syncd.delivery.intake.queue_change`: dedupe on
``eventId``, dirty mark, enqueue) and only then ACKed ``SUCCESS``; when Redis cannot take it
the ACK is ``LATER`` (code 500) and DingTalk delivers it again. A malformed frame is logged,
counted and ACKed (redelivering it could never succeed). SYSTEM ``ping`` is answered,
``disconnect`` ends the connection. aiohttp's heartbeat (WebSocket pings every
:data:`HEARTBEAT_S`) notices a dead peer.

:func:`stream_forever` reconnects with a fresh ticket — at once after a connection that
worked, with exponential backoff (:data:`BACKOFF_S`) after consecutive failures.

The official ``dingtalk-stream`` SDK is not used here: it opens connections with blocking
``requests`` calls, ACKs inside its handler call (before the caller could say "queued")
and pauses 10 s after every network error; it serves as the sandbox's conformance check.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import structlog
from arq.connections import ArqRedis

from syncd import __version__
from syncd.config import Tenant
from syncd.delivery import frames
from syncd.delivery.intake import queue_change
from syncd.errors import BadPayload, StoreError, SyncdError
from syncd.observability import STREAM_CONNECTED, STREAM_EVENTS

log = structlog.get_logger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
HEARTBEAT_S = 30.0
BACKOFF_S = (0.5, 30.0)
"""First and longest wait between failed connection attempts."""
OPEN_TIMEOUT_S = 10.0


class StreamUnavailable(SyncdError):
    """A connection could not be opened (DingTalk refused, or is unreachable)."""


async def open_url(session: aiohttp.ClientSession, tenant: Tenant) -> str:
    """A fresh ``endpoint?ticket=`` URL for one connection of ``tenant``'s app."""
    app = tenant.dingtalk
    body = frames.open_request(
        app.app_key, app.app_secret.get_secret_value(), f"syncd/{__version__}"
    )
    try:
        async with session.post(
            app.api_base + OPEN_PATH,
            json=body,
            timeout=aiohttp.ClientTimeout(total=OPEN_TIMEOUT_S),
        ) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200:
                raise StreamUnavailable(f"connections/open answered {resp.status}: {answer}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise StreamUnavailable(f"connections/open failed: {exc!r}") from exc
    try:
        return frames.connect_url(answer)
    except BadPayload as exc:
        raise StreamUnavailable(str(exc)) from exc


async def answer(pool: ArqRedis, tenant: Tenant, text: str) -> tuple[str | None, bool]:
    """What to send back for one text message, and whether the connection should end."""
    try:
        frame = frames.parse_frame(text)
    except BadPayload as exc:
        STREAM_EVENTS.labels(tenant.id, "rejected_frame").inc()
        log.warning("stream_frame_rejected", tenant=tenant.id, reason=str(exc))
        return None, False
    if frame.type == frames.SYSTEM:
        if frame.topic == frames.DISCONNECT:
            log.info("stream_disconnect_asked", tenant=tenant.id, data=frame.data)
            return None, True
        return frames.pong(frame), False
    if frame.type != frames.EVENT:
        log.info("stream_frame_ignored", tenant=tenant.id, type=frame.type, topic=frame.topic)
        return None, False
    return await _event(pool, tenant, frame), False


async def _event(pool: ArqRedis, tenant: Tenant, frame: frames.Frame) -> str:
    try:
        event = frames.event_of(frame)
    except BadPayload as exc:
        STREAM_EVENTS.labels(tenant.id, "rejected").inc()
        log.warning("stream_event_rejected", tenant=tenant.id, reason=str(exc))
        return frames.ack(frame, ok=True)  # never consumable: do not have it sent again
    try:
        outcome = await queue_change(pool, tenant, event, "stream")
    except StoreError as exc:
        STREAM_EVENTS.labels(tenant.id, "not_stored").inc()
        log.error("stream_not_stored", tenant=tenant.id, push_id=event.push_id, error=str(exc))
        return frames.ack(frame, ok=False)
    STREAM_EVENTS.labels(tenant.id, outcome).inc()
    return frames.ack(frame, ok=True)


async def stream_once(session: aiohttp.ClientSession, pool: ArqRedis, tenant: Tenant) -> None:
    """Open one connection and serve it until it closes; raises StreamUnavailable if none."""
    url = await open_url(session, tenant)
    try:
        async with session.ws_connect(url, heartbeat=HEARTBEAT_S) as ws:
            STREAM_CONNECTED.labels(tenant.id).set(1)
            log.info("stream_connected", tenant=tenant.id)
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                reply, end = await answer(pool, tenant, msg.data)
                if reply is not None:
                    await ws.send_str(reply)
                if end:
                    break
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        raise StreamUnavailable(f"stream connection failed: {exc!r}") from exc
    finally:
        STREAM_CONNECTED.labels(tenant.id).set(0)
    log.info("stream_closed", tenant=tenant.id)


async def stream_forever(
    session: aiohttp.ClientSession,
    pool: ArqRedis,
    tenant: Tenant,
    *,
    backoff_s: tuple[float, float] = BACKOFF_S,
) -> None:
    """Keep one connection of ``tenant`` open, with a fresh ticket each time (until cancelled)."""
    first, longest = backoff_s
    delay = first
    while True:
        try:
            await stream_once(session, pool, tenant)
            delay = first  # it worked: reconnect at once
            continue
        except StreamUnavailable as exc:
            log.warning("stream_unavailable", tenant=tenant.id, error=str(exc), retry_s=delay)
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, longest)
