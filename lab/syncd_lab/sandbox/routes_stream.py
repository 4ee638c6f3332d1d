"""Stream mode routes: open a connection, the WebSocket, and ``POST /_sandbox/stream``.

``POST /_sandbox/stream`` ``{app_key, action: ping|disconnect|close}`` sends a SYSTEM ping,
a SYSTEM disconnect, or drops the app's sockets at once (see :mod:`syncd_lab.sandbox.stream`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from syncd_lab.sandbox._http import PUBLIC, body_of, sandbox_of
from syncd_lab.sandbox.errors import BAD_CLIENT, ApiError
from syncd_lab.sandbox.stream import Conn, StreamHub

log = structlog.get_logger(__name__)

OPEN_OP = "OpenConnection"


def hub_of(request: web.Request) -> StreamHub:
    """The Stream hub of the request's sandbox."""
    hub: StreamHub = sandbox_of(request).stream
    return hub


async def open_connection(request: web.Request) -> web.Response:
    """OpenConnection: POST /v1.0/gateway/connections/open {clientId, clientSecret, ...}."""
    body = await body_of(request)
    sandbox = sandbox_of(request)
    app = sandbox.seed.app(str(body.get("clientId", "")))
    if app is None or body.get("clientSecret") != app.app_secret:
        raise ApiError(400, BAD_CLIENT, "clientId or clientSecret is wrong")
    ticket = hub_of(request).issue_ticket(app.app_key)
    endpoint = f"ws://{request.host}/connect"
    return web.json_response({"endpoint": endpoint, "ticket": ticket})


async def connect(request: web.Request) -> web.StreamResponse:
    """GET /connect?ticket=...: the WebSocket of one Stream connection."""
    hub = hub_of(request)
    app_key = hub.redeem(request.query.get("ticket", ""))
    if app_key is None:
        return web.json_response({"code": "invalidTicket", "message": "ticket"}, status=401)
    ws = web.WebSocketResponse(heartbeat=None, autoping=True)
    await ws.prepare(request)
    conn = Conn(uuid.uuid4().hex, app_key, ws)
    hub.on_open(conn)
    log.info("stream_connected", app_key=app_key, conn_id=conn.conn_id)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            _on_text(hub, conn, msg.data)
    finally:
        hub.on_close(conn)
        log.info("stream_closed", app_key=app_key, conn_id=conn.conn_id)
    return ws


def _on_text(hub: StreamHub, conn: Conn, text: str) -> None:
    try:
        ack = json.loads(text)
    except ValueError:
        log.info("stream_bad_ack", conn_id=conn.conn_id, reason="not JSON")
        return
    if isinstance(ack, dict):
        hub.on_ack(conn, ack)


async def admin(request: web.Request) -> web.Response:
    """POST /_sandbox/stream {app_key, action: ping|disconnect|close}."""
    body = await request.json()
    app_key = str(body.get("app_key", ""))
    action = body.get("action")
    hub = hub_of(request)
    actions: dict[str, Callable[[], Any]] = {
        "ping": lambda: hub.ping(app_key),
        "disconnect": lambda: hub.disconnect(app_key),
        "close": lambda: hub.close_all(app_key),
    }
    if action not in actions:
        raise web.HTTPBadRequest(text='{"error": "action must be ping, disconnect or close"}')
    count = await actions[str(action)]()
    return web.json_response({"connections": count})


def add_routes(app: web.Application) -> None:
    """Register the Stream routes."""
    assert OPEN_OP in PUBLIC  # opened with app credentials, not an access token
    app.router.add_post("/v1.0/gateway/connections/open", open_connection, name=OPEN_OP)
    app.router.add_get("/connect", connect)
    app.router.add_post("/_sandbox/stream", admin, name="_sandbox.stream")
