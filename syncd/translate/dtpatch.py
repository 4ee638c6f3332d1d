"""The DingTalk PatchEvent body for an update: only what syncd maps, only what changed (pure).

``patch_body(before, after, ctx, held=...)`` compares the request body
:func:`~.dingtalk.event_to_dingtalk` makes of ``before`` (what DingTalk holds, as read) with
the one it makes of ``after`` and keeps the keys that differ, so DingTalk fields syncd does
not read (``categories``, ``richTextDescription``, ``uiConfigs``, ``cardInstances``,
meeting rooms, ``onlineMeetingInfo``, ...) are never sent, hence never cleared.

- ``start``, ``end`` and ``isAllDay`` travel together when any of them changed (DingTalk
  checks them as a unit).
- ``attendees`` (a full replacement) and ``reminders`` are compared as sets.
- ``freeBusyStatus`` is sent whenever ``held`` (the raw event) does not report it, since
  what DingTalk holds is then unknown.
- ``recurrence`` is never removed: a body cannot clear it (absent means "unchanged").
- ``extra`` (the no-notification switches) is always sent.
- A new ``description`` makes a rich-text body (``richTextDescription``, HTML) stale:
  it is replaced by the new text as HTML and ``dingtalk_rich_text_replaced`` is logged,
  so DingTalk shows what the user wrote; its formatting is lost. An unchanged description
  leaves the rich text alone.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import structlog

from syncd.model import Event
from syncd.translate.context import Context
from syncd.translate.dingtalk import NO_NOTIFY, event_to_dingtalk

log = structlog.get_logger(__name__)

TIME_KEYS = ("start", "end", "isAllDay")
WRITE_ONLY = ("freeBusyStatus",)  # accepted by create/patch, absent from every response


def patch_body(
    before: Event, after: Event, ctx: Context, *, held: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The keys of ``after``'s body that differ from ``before``'s, plus ``extra``."""
    old, new = event_to_dingtalk(before, ctx), event_to_dingtalk(after, ctx)
    body: dict[str, Any] = {}
    for key, value in new.items():
        if key in TIME_KEYS or key == "extra":
            continue
        unknown = key in WRITE_ONLY and (held is None or key not in held)
        if unknown or _norm(key, old.get(key)) != _norm(key, value):
            body[key] = value
    if any(old.get(k) != new.get(k) for k in TIME_KEYS):
        body.update({k: new[k] for k in TIME_KEYS})
    if "description" in body:
        _rich_text(body, held, after.uid)
    body["extra"] = dict(NO_NOTIFY)
    return body


def is_empty_patch(body: Mapping[str, Any]) -> bool:
    """True when a patch body would change nothing (only ``extra`` is in it)."""
    return not (set(body) - {"extra", "id"})


def _norm(key: str, value: Any) -> Any:
    if key == "attendees":
        return sorted((str(a.get("id")), bool(a.get("isOptional"))) for a in value or ())
    if key == "reminders":
        return sorted(int(r.get("minutes", 0)) for r in value or ())
    return value


def _rich_text(body: dict[str, Any], held: Mapping[str, Any] | None, uid: str) -> None:
    rich = (held or {}).get("richTextDescription")
    if not isinstance(rich, Mapping) or not str(rich.get("text") or "").strip():
        return
    text = str(body["description"])
    body["richTextDescription"] = {"text": html.escape(text).replace("\n", "<br/>")}
    log.warning("dingtalk_rich_text_replaced", uid=uid, event_id=(held or {}).get("id"))
