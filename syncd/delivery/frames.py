"""DingTalk Stream frames and ACKs (reference §7.3-7.4). Pure: no I/O.

A frame is ``{specVersion, type: SYSTEM|EVENT|CALLBACK, headers, data}`` with ``data`` a
JSON string. syncd answers every EVENT with an ACK ``{code, headers: {messageId,
contentType}, message, data}`` whose ``data`` is ``{"status": "SUCCESS"}`` once the change
is queued, or code 500 with ``{"status": "LATER"}`` when it is not (DingTalk delivers it
again); a SYSTEM ``ping`` is answered by echoing its ``data``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from syncd.errors import BadPayload
from syncd.webhook.payload import CallbackEvent, parse_event

EVENT = "EVENT"
SYSTEM = "SYSTEM"
CALLBACK = "CALLBACK"
PING = "ping"
DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class Frame:
    """One server frame: its type, headers and (still JSON-encoded) data."""

    type: str
    headers: dict[str, str]
    data: str

    @property
    def message_id(self) -> str:
        """The frame's ``messageId`` (what its ACK must carry)."""
        return self.headers.get("messageId", "")

    @property
    def topic(self) -> str:
        """The ``topic`` header (``ping`` and ``disconnect`` for SYSTEM frames)."""
        return self.headers.get("topic", "")


def parse_frame(text: str) -> Frame:
    """A frame from one WebSocket text message; :class:`BadPayload` with a one-line reason."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BadPayload(f"stream frame is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadPayload("stream frame is not a JSON object")
    kind, headers, data = raw.get("type"), raw.get("headers"), raw.get("data", "")
    if not isinstance(kind, str) or not isinstance(headers, dict):
        raise BadPayload("stream frame lacks a type or headers")
    if not isinstance(data, str):
        data = json.dumps(data)
    return Frame(kind, {str(k): str(v) for k, v in headers.items()}, data)


def event_of(frame: Frame) -> CallbackEvent:
    """The change an EVENT frame reports (dedupe id = its ``eventId`` header).

    ``data`` holds the camelCase fields of the push (§6.3); the event type and id come from
    the headers. Parsed like a callback's plaintext, keys case-insensitively.
    """
    try:
        data = json.loads(frame.data) if frame.data else {}
    except ValueError as exc:
        raise BadPayload(f"stream event data is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadPayload("stream event data is not a JSON object")
    event_type = frame.headers.get("eventType", "")
    event_id = frame.headers.get("eventId") or data.get("eventId") or ""
    merged: dict[str, Any] = {**data, "EventType": event_type, "eventId": event_id}
    merged.pop("bizId", None)
    merged.pop("BizId", None)
    return parse_event(json.dumps(merged))


def ack(frame: Frame, *, ok: bool) -> str:
    """The ACK of an EVENT frame: SUCCESS once queued, else LATER (delivered again)."""
    status = {"status": "SUCCESS", "message": "queued"} if ok else {"status": "LATER"}
    return _reply(frame, 200 if ok else 500, "OK" if ok else "not queued", status)


def pong(frame: Frame) -> str:
    """The answer to a SYSTEM ``ping``: code 200 echoing its data."""
    try:
        data: Any = json.loads(frame.data) if frame.data else {}
    except ValueError:
        data = {}
    return _reply(frame, 200, "OK", data)


def _reply(frame: Frame, code: int, message: str, data: Any) -> str:
    headers = {"messageId": frame.message_id, "contentType": "application/json"}
    body = {"code": code, "headers": headers, "message": message, "data": json.dumps(data)}
    return json.dumps(body, separators=(",", ":"))


def open_request(app_key: str, app_secret: str, ua: str) -> dict[str, Any]:
    """The body of ``POST /v1.0/gateway/connections/open``: every event (``topic: *``)."""
    return {
        "clientId": app_key,
        "clientSecret": app_secret,
        "subscriptions": [{"type": EVENT, "topic": "*"}],
        "ua": ua,
    }


def connect_url(answer: Any) -> str:
    """``<endpoint>?ticket=<ticket>`` from the open answer; :class:`BadPayload` if malformed."""
    if not isinstance(answer, dict):
        raise BadPayload("connections/open answer is not a JSON object")
    endpoint, ticket = answer.get("endpoint"), answer.get("ticket")
    if not isinstance(endpoint, str) or not endpoint or not isinstance(ticket, str) or not ticket:
        raise BadPayload("connections/open answer lacks endpoint or ticket")
    return f"{endpoint}?ticket={quote_plus(ticket)}"
