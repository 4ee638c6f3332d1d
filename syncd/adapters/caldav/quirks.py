"""What CalDAV servers do differently, as data (not ``if server == ...`` in the code).

Each row says which server (or family) shows the behaviour and where it was seen. The
client reads only the derived sets at the bottom; add a row to teach it a new server.
"""

from __future__ import annotations

from dataclasses import dataclass

VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"  # noqa: S105 - an XML element name
SUPPORTED_REPORT = "{DAV:}supported-report"
NO_UID_CONFLICT = "{urn:ietf:params:xml:ns:caldav}no-uid-conflict"


@dataclass(frozen=True, slots=True)
class Quirk:
    """One observed server behaviour: ``status`` answered to ``request`` means ``meaning``."""

    server: str
    request: str  # "sync-token" (sync-collection with a token) | "sync-report" (any)
    status: int
    meaning: str  # "invalid-token" | "sync-unsupported"
    source: str


QUIRKS: tuple[Quirk, ...] = (
    Quirk("radicale", "sync-token", 403, "invalid-token", "Radicale 3.9, checked here"),
    Quirk("xandikos", "sync-token", 412, "invalid-token", "Xandikos 0.4.10, checked here"),
    Quirk("rfc6578", "sync-token", 409, "invalid-token", "servers reading RFC 6578 3.2 loosely"),
    Quirk("google", "sync-token", 410, "invalid-token", "Google-style 'gone' cursors"),
    Quirk("nextcloud", "sync-token", 418, "invalid-token", "python-caldav #183/#203/#234"),
    Quirk("yandex", "sync-report", 507, "sync-unsupported", "python-caldav #353, large calendars"),
    Quirk("generic", "sync-report", 405, "sync-unsupported", "REPORT not allowed"),
    Quirk("generic", "sync-report", 415, "sync-unsupported", "python-caldav #461"),
    Quirk("generic", "sync-report", 501, "sync-unsupported", "REPORT not implemented"),
    Quirk("nextcloud", "sync-report", 418, "sync-unsupported", "python-caldav #183"),
)

# A sync-collection with a token answered with one of these: the token is stale, re-list.
INVALID_TOKEN_STATUSES = frozenset(
    q.status for q in QUIRKS if q.meaning == "invalid-token" and q.request == "sync-token"
) | frozenset(q.status for q in QUIRKS if q.meaning == "sync-unsupported")

# A sync-collection without a token answered with one of these: list by PROPFIND instead.
SYNC_UNSUPPORTED_STATUSES = frozenset(q.status for q in QUIRKS if q.meaning == "sync-unsupported")


def is_invalid_token(status: int | None, preconditions: list[str]) -> bool:
    """Does this answer to a sync-collection REPORT *with a token* mean "re-list in full"?"""
    return VALID_SYNC_TOKEN in preconditions or status in INVALID_TOKEN_STATUSES


def is_sync_unsupported(status: int | None, preconditions: list[str]) -> bool:
    """Does this answer to a sync-collection REPORT *without a token* mean "cannot sync"?"""
    return SUPPORTED_REPORT in preconditions or status in SYNC_UNSUPPORTED_STATUSES
