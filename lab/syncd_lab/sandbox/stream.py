"""DingTalk Stream mode, as the sandbox serves it (reference §6.3 and §7).

``POST /v1.0/gateway/connections/open`` ``{clientId, clientSecret, subscriptions}`` answers
``{endpoint: ws://HOST:PORT/connect, ticket}``; the ticket is single-use and valid 90 s.
``GET /connect?ticket=...`` upgrades to the WebSocket. On it the sandbox sends frames
``{specVersion, type, headers, data}`` exactly as the official ``dingtalk-stream`` SDK reads
them, and reads ACKs ``{code, headers: {messageId}, message, data}``:

* ``EVENT`` frames carry one ``calendar_event_change`` of an app seeded with ``delivery:
  stream`` (headers ``topic: *``, ``messageId``, ``eventType``, ``eventId``,
  ``eventBornTime``, ``eventCorpId``, ``eventUnifiedAppId``…; ``data`` a JSON string of the
  camelCase fields). Each goes to one open connection of the app, chosen at random.
* An event counts as delivered only by an ACK with ``code`` 200 whose ``data`` is not
  ``{"status": "LATER"}`` (the SDK's own form echoes the event data; both are accepted).
  Anything else — a 500/404 ACK, a ``LATER``, no ACK within :attr:`StreamHub.ack_timeout`,
  the connection closing — leaves it pending; pending events are sent again (same
  ``eventId``, a new ``messageId``) after the timeout and at once to a new connection.
  With no connection open they wait, undelivered, for the next one.
* ``SYSTEM`` frames: ``ping`` (``data {"opaque"}``, answered by echoing it) and
  ``disconnect`` (``data {"reason"}``; the socket is closed 10 s later, or at once with
  ``close=True``).

The routes are in :mod:`syncd_lab.sandbox.routes_stream`; the counters are in
``GET /_sandbox/stats`` under ``stream``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from syncd_lab.sandbox.writer import Change

log = structlog.get_logger(__name__)

TICKET_TTL_S = 90.0
DISCONNECT_GRACE_S = 10.0


@dataclass
class Pending:
    """One event not yet acknowledged."""

    app_key: str
    event_id: str
    headers: dict[str, str]
    data: str
    message_id: str = ""
    conn_id: str = ""
    sent_at: float = 0.0
    attempts: int = 0


@dataclass
class Conn:
    """One open Stream connection."""

    conn_id: str
    app_key: str
    ws: web.WebSocketResponse
    pongs: int = 0
    opened_at: float = field(default_factory=time.monotonic)


def event_data(change: Change, event_id: str, calendar_id: str) -> dict[str, Any]:
    """The camelCase ``data`` object of a Stream ``calendar_event_change`` (§6.3)."""
    return {
        "calendarEventId": change.event_id,
        "calendarEventUpdateTime": change.update_ms,
        "calendarId": calendar_id,
        "unionIdList": list(change.union_ids),
        "changeType": change.change_type,
        "legacyCalendarEventId": change.legacy_id,
        "operator": {"type": "user"},
        "eventId": event_id,
    }


def _frame(kind: str, headers: dict[str, str], data: str) -> str:
    return json.dumps({"specVersion": "1.0", "type": kind, "headers": headers, "data": data})


def acknowledged(ack: dict[str, Any]) -> bool:
    """True for an ACK that confirms consumption: code 200 and not ``status: LATER``."""
    if ack.get("code") != 200:
        return False
    raw = ack.get("data")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return True  # an unparseable echo with code 200 still says "consumed"
    return not (isinstance(data, dict) and str(data.get("status", "")).upper() == "LATER")


class StreamHub:
    """Tickets, connections and the pending events of every Stream app of the sandbox."""

    def __init__(self, *, ack_timeout: float = 5.0, rng: random.Random | None = None) -> None:
        self.ack_timeout = ack_timeout
        self.rng = rng or random.Random(0)
        self.tickets: dict[str, tuple[str, float]] = {}
        self.conns: dict[str, Conn] = {}
        self.pending: dict[str, Pending] = {}  # by eventId
        self.by_message: dict[str, str] = {}  # messageId -> eventId
        self.counts = {
            "connections": 0,
            "sent": 0,
            "redelivered": 0,
            "acked": 0,
            "nacked": 0,
            "pings": 0,
            "pongs": 0,
        }
        self._task: asyncio.Task[None] | None = None

    # --- tickets and connections -------------------------------------------------------

    def issue_ticket(self, app_key: str) -> str:
        """A single-use ticket for one WebSocket of ``app_key``."""
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = (app_key, time.monotonic() + TICKET_TTL_S)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The app of a valid, unused ticket (which is used up), else None."""
        app_key, until = self.tickets.pop(ticket, ("", 0.0))
        return app_key if app_key and time.monotonic() < until else None

    def open_conns(self, app_key: str) -> list[Conn]:
        """The app's connections whose sockets are still open."""
        return [c for c in self.conns.values() if c.app_key == app_key and not c.ws.closed]

    # --- events ------------------------------------------------------------------------

    def publish(self, app_key: str, corp_id: str, change: Change, calendar_id: str) -> None:
        """Queue one change for the app's Stream connections and send it if one is open."""
        event_id = uuid.uuid4().hex
        headers = {
            "topic": "*",
            "contentType": "application/json",
            "appId": app_key,
            "eventType": "calendar_event_change",
            "eventId": event_id,
            "eventBornTime": str(int(time.time() * 1000)),
            "eventCorpId": corp_id,
            "eventUnifiedAppId": app_key,
        }
        data = json.dumps(event_data(change, event_id, calendar_id), separators=(",", ":"))
        self.pending[event_id] = Pending(app_key, event_id, headers, data)
        self._ensure_loop()
        self._spawn_send(self.pending[event_id])

    def _spawn_send(self, item: Pending) -> None:
        conns = self.open_conns(item.app_key)
        if not conns:
            return
        conn = self.rng.choice(conns)
        if item.attempts:
            self.counts["redelivered"] += 1
        item.message_id = uuid.uuid4().hex
        item.conn_id = conn.conn_id
        item.sent_at = time.monotonic()
        item.attempts += 1
        self.by_message[item.message_id] = item.event_id
        headers = {
            **item.headers,
            "messageId": item.message_id,
            "connectionId": conn.conn_id,
            "time": str(int(time.time() * 1000)),
        }
        self.counts["sent"] += 1
        asyncio.get_running_loop().create_task(_send(conn.ws, _frame("EVENT", headers, item.data)))

    def on_ack(self, conn: Conn, ack: dict[str, Any]) -> None:
        """An ACK (or a ping answer) arrived on ``conn``."""
        headers = ack.get("headers")
        message_id = headers.get("messageId") if isinstance(headers, dict) else None
        event_id = self.by_message.pop(str(message_id), None)
        if event_id is None:
            if message_id and str(message_id).startswith("ping-"):
                conn.pongs += 1
                self.counts["pongs"] += 1
            return
        item = self.pending.get(event_id)
        if item is None or item.message_id != message_id:
            return  # an ACK of an earlier delivery of an event since acknowledged
        if acknowledged(ack):
            del self.pending[event_id]
            self.counts["acked"] += 1
        else:
            self.counts["nacked"] += 1
            item.conn_id = ""  # resent after the ACK timeout

    def on_open(self, conn: Conn) -> None:
        """A new connection: everything pending and not in flight on a live one goes to it."""
        self.conns[conn.conn_id] = conn
        self.counts["connections"] += 1
        live = {c.conn_id for c in self.open_conns(conn.app_key)} - {conn.conn_id}
        for item in list(self.pending.values()):
            if item.app_key == conn.app_key and item.conn_id not in live:
                self._spawn_send(item)

    def on_close(self, conn: Conn) -> None:
        """Forget a closed connection (its unacknowledged events stay pending)."""
        self.conns.pop(conn.conn_id, None)

    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._redeliver_loop())

    async def _redeliver_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self.ack_timeout / 2, 1.0))
            now = time.monotonic()
            for item in list(self.pending.values()):
                in_flight = item.conn_id in self.conns and now - item.sent_at < self.ack_timeout
                if not in_flight:
                    self._spawn_send(item)

    # --- system frames -----------------------------------------------------------------

    async def ping(self, app_key: str) -> int:
        """Send a SYSTEM ping on each of the app's connections; how many were sent."""
        conns = self.open_conns(app_key)
        for conn in conns:
            headers = {
                "topic": "ping",
                "messageId": f"ping-{uuid.uuid4().hex}",
                "contentType": "application/json",
                "time": str(int(time.time() * 1000)),
            }
            self.counts["pings"] += 1
            data = json.dumps({"opaque": uuid.uuid4().hex})
            await _send(conn.ws, _frame("SYSTEM", headers, data))
        return len(conns)

    async def disconnect(self, app_key: str, *, close: bool = False) -> int:
        """SYSTEM ``disconnect`` on each connection; the socket closes 10 s later (or now)."""
        conns = self.open_conns(app_key)
        for conn in conns:
            headers = {"topic": "disconnect", "messageId": uuid.uuid4().hex}
            data = json.dumps({"reason": "sandbox: server is restarting"})
            await _send(conn.ws, _frame("SYSTEM", headers, data))
            delay = 0.0 if close else DISCONNECT_GRACE_S
            asyncio.get_running_loop().call_later(delay, _close_soon, conn.ws)
        return len(conns)

    async def close_all(self, app_key: str | None = None) -> int:
        """Close sockets abruptly (a network drop); pending events stay pending."""
        conns = [c for c in self.conns.values() if app_key in (None, c.app_key)]
        for conn in conns:
            await conn.ws.close()
        return len(conns)

    async def close(self) -> None:
        """Stop redelivery and close every socket."""
        if self._task is not None:
            self._task.cancel()
        await self.close_all()

    def reset(self) -> None:
        """Forget pending events and zero the counters (connections stay open)."""
        self.pending.clear()
        self.by_message.clear()
        self.counts = dict.fromkeys(self.counts, 0)

    def stats(self) -> dict[str, Any]:
        """Counters plus the number of open connections and pending events."""
        return dict(self.counts, open=len(self.conns), pending=len(self.pending))


async def _send(ws: web.WebSocketResponse, text: str) -> None:
    if ws.closed:
        return
    try:
        await ws.send_str(text)
    except (ConnectionError, RuntimeError) as exc:  # closing under us: stays pending
        log.info("stream_send_failed", error=repr(exc))


def _close_soon(ws: web.WebSocketResponse) -> None:
    asyncio.get_running_loop().create_task(ws.close())
