"""Pure translation DingTalk JSON <-> canonical Event <-> iCalendar (no I/O, no await).

- ``Directory`` / ``Context``: what translation needs to know about the tenant.
- ``event_from_dingtalk(master, instances, ctx) -> Event``
- ``event_to_dingtalk(event, ctx) -> dict``  (create/patch body; no ``id``; no exceptions)
- ``exception_bodies(event, ctx) -> [(recurrence_id, body | None)]``  (None = cancelled)
- ``dingtalk_warnings(event, ctx) -> [str]``  (what the body cannot carry: truncation, ...)
- ``as_dingtalk_keeps(event, ctx) -> Event``  (the event as DingTalk will hold it)
- ``patch_body(before, after, ctx, held=raw) -> dict`` (PatchEvent body: changed mapped keys only)
- ``event_from_ical(text, ctx) -> Event``     (one calendar object resource)
- ``event_to_ical(event, ctx) -> str``         (a new object)
- ``patch_ical(stored_text, event, ctx) -> str`` (an update: only changed mapped properties)
- ``uid_for_dingtalk_id(event_id) -> str``   (deterministic UID for DingTalk-born events)
- ``canonical_rrule``, ``rrule_to_dingtalk``, ``dingtalk_to_rrule``: recurrence mapping.
- ``user_response(event, ctx) -> str | None``: the bound attendee's answer for RespondEvent.
- ``editable_in_dingtalk(event, ctx) -> bool``: the bound user organizes it (may write it).

Policies (what cannot be mapped, truncation, people, time zones) are in the README, "What syncs".
"""

from syncd.translate._dtrecur import dingtalk_to_rrule, rrule_to_dingtalk
from syncd.translate._lossy import as_dingtalk_keeps, dingtalk_warnings
from syncd.translate._people import editable_in_dingtalk, user_response
from syncd.translate._rrule import canonical_rrule
from syncd.translate.context import Context, Directory
from syncd.translate.dingtalk import (
    ATTENDEE_LIMIT,
    DESCRIPTION_LIMIT,
    SUMMARY_LIMIT,
    event_from_dingtalk,
    event_to_dingtalk,
    exception_bodies,
    uid_for_dingtalk_id,
)
from syncd.translate.dtpatch import is_empty_patch, patch_body
from syncd.translate.ical import event_from_ical, event_to_ical
from syncd.translate.icalpatch import patch_ical

__all__ = [
    "ATTENDEE_LIMIT",
    "DESCRIPTION_LIMIT",
    "SUMMARY_LIMIT",
    "Context",
    "Directory",
    "as_dingtalk_keeps",
    "canonical_rrule",
    "dingtalk_to_rrule",
    "dingtalk_warnings",
    "editable_in_dingtalk",
    "event_from_dingtalk",
    "event_from_ical",
    "event_to_dingtalk",
    "event_to_ical",
    "exception_bodies",
    "is_empty_patch",
    "patch_body",
    "patch_ical",
    "rrule_to_dingtalk",
    "uid_for_dingtalk_id",
    "user_response",
]
