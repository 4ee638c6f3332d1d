"""Parse decrypted DingTalk callback plaintext, whatever the key casing.

DingTalk documents camelCase calendar fields but production pushes carry PascalCase;
keys are therefore matched case-insensitively. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from syncd.errors import BadPayload

CHECK_URL = "check_url"
CALENDAR_CHANGE = "calendar_event_change"


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """What the webhook needs from one push: its type, dedupe id and affected users."""

    event_type: str
    push_id: str
    union_ids: tuple[str, ...] = ()
    calendar_event_id: str | None = None
    change_type: str | None = None


def parse_event(plaintext: str) -> CallbackEvent:
    """Parse a decrypted push; raises :class:`BadPayload` with a one-line reason."""
    try:
        data = json.loads(plaintext)
    except ValueError as exc:
        raise BadPayload(f"callback plaintext is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadPayload("callback plaintext is not a JSON object")
    fields = {str(k).lower(): v for k, v in data.items()}
    event_type = fields.get("eventtype")
    if not isinstance(event_type, str) or not event_type:
        raise BadPayload("callback has no EventType")
    push_id = _push_id(fields, plaintext)
    if event_type != CALENDAR_CHANGE:
        return CallbackEvent(event_type, push_id)
    union_ids = fields.get("unionidlist")
    if not isinstance(union_ids, list) or not all(isinstance(u, str) for u in union_ids):
        raise BadPayload("calendar_event_change without a UnionIdList of strings")
    event_id = fields.get("calendareventid")
    change = fields.get("changetype")
    return CallbackEvent(
        event_type,
        push_id,
        tuple(union_ids),
        event_id if isinstance(event_id, str) else None,
        _change_type(change),
    )


def _push_id(fields: dict[str, Any], plaintext: str) -> str:
    """DingTalk's idempotency key (BizId / eventId), else a hash of the plaintext."""
    for key in ("bizid", "eventid"):
        value = fields.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)
    return "sha1:" + hashlib.sha1(plaintext.encode(), usedforsecurity=False).hexdigest()


def _change_type(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return "created" if value == "create" else value
