"""What CalDAV servers do differently, as data (not ``if server == ...`` in the code).

Each row says which server (or family) shows the behaviour and where it was seen. The
client reads only the derived sets at the bottom; add a row to teach it a new server.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"  # noqa: S105 - an XML element name
SUPPORTED_REPORT = "{DAV:}supported-report"
NO_UID_CONFLICT = "{urn:ietf:params:xml:ns:caldav}no-uid-conflict"
UNIQUE_SCHEDULING_OBJECT = "{urn:ietf:params:xml:ns:caldav}unique-scheduling-object-resource"


@dataclass(frozen=True, slots=True)
class Quirk:
    """One observed server behaviour: ``status`` answered to ``request`` means ``meaning``."""

    server: str
    request: str  # "sync-token" (sync-collection with a token) | "sync-report" (any) | "create"
    status: int
    meaning: str  # "invalid-token" | "sync-unsupported" | "full-listing" | "uid-taken-elsewhere"
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
    # Cyrus IMAP 3.6.1 (Debian 3.6.1-4+deb12u5), checked here: a stale or foreign token is
    # 403 with <D:valid-sync-token/> (tokens look like "data:,<uidvalidity>-<modseq>").
    Quirk("cyrus", "sync-token", 403, "invalid-token", "Cyrus 3.6.1, checked here"),
    # Cyrus 3.6.1, checked here: a UID may live in one calendar of a user only. Creating
    # it in a second calendar of the same account is 403 with
    # <C:unique-scheduling-object-resource><D:href>(the other one)</D:href>, even for an
    # event without ORGANIZER (RFC 6638 3.2.4.1 asks this of scheduling objects only).
    Quirk("cyrus", "create", 403, "uid-taken-elsewhere", "Cyrus 3.6.1, checked here"),
    # DAViCal 1.1.12 (Debian 1.1.12-2), checked here: a token it does not know (another
    # collection's, a made-up one, or one it pruned: it drops tokens older than 7 days
    # once newer ones exist) or one newer than its own is answered with a plain 207
    # listing every current item, no removed entries and no <D:valid-sync-token/>
    # (caldav-REPORT-sync-collection.php: "they gave us a sync token we know not of, so
    # provide a full sync"). Tokens look like "data:,<n>". See may_be_full_listing().
    Quirk("davical", "sync-token", 207, "full-listing", "DAViCal 1.1.12, checked here"),
)

# A sync-collection with a token answered with one of these: the token is stale, re-list.
INVALID_TOKEN_STATUSES = frozenset(
    q.status for q in QUIRKS if q.meaning == "invalid-token" and q.request == "sync-token"
) | frozenset(q.status for q in QUIRKS if q.meaning == "sync-unsupported")

# A sync-collection without a token answered with one of these: list by PROPFIND instead.
SYNC_UNSUPPORTED_STATUSES = frozenset(q.status for q in QUIRKS if q.meaning == "sync-unsupported")


# What a DAV:error precondition tells a person, for the one-line reason of a failed write.
PRECONDITION_REASONS = {
    NO_UID_CONFLICT: "an item with this UID already exists in the calendar",
    UNIQUE_SCHEDULING_OBJECT: (
        "the server keeps one copy of a UID per account, and another calendar of this "
        "account already holds this UID"
    ),
}

# Create answered with one of these preconditions: the item cannot be created here at
# all (not a race to re-read): a dead letter, not a retry.
UID_TAKEN_ELSEWHERE = frozenset({UNIQUE_SCHEDULING_OBJECT})


def is_invalid_token(status: int | None, preconditions: list[str]) -> bool:
    """Does this answer to a sync-collection REPORT *with a token* mean "re-list in full"?"""
    return VALID_SYNC_TOKEN in preconditions or status in INVALID_TOKEN_STATUSES


def is_sync_unsupported(status: int | None, preconditions: list[str]) -> bool:
    """Does this answer to a sync-collection REPORT *without a token* mean "cannot sync"?"""
    return SUPPORTED_REPORT in preconditions or status in SYNC_UNSUPPORTED_STATUSES


def may_be_full_listing(
    changed: Collection[str], deleted: Collection[str], sent: str, received: str | None
) -> bool:
    """Could this answer to a sync-collection *with a token* be a full listing in disguise?

    A server that does not know the token (see the "full-listing" rows) lists every
    current item and reports no removals, under a token other than the one sent. So an
    answer with removals is a real incremental one, and so is an empty answer under the
    unchanged token (the idle poll: nothing more is asked then). Any other answer may be
    a full listing; the client then checks it against the collection's members.
    """
    if deleted:
        return False
    return bool(changed) or received != sent
