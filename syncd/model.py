"""Frozen value objects shared by every layer.

:class:`Event` is the canonical form of one calendar item (a single event, or a recurring
series with its exceptions) that both sides translate into. Only fields the bridge maps
are in it, so two events are "the same meeting" exactly when their fingerprints agree.
This module does no I/O and imports nothing from syncd but ``errors``.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

Status = Literal["confirmed", "tentative", "cancelled"]
Privacy = Literal["public", "private", "confidential"]
PartStat = Literal["needs-action", "accepted", "declined", "tentative"]
FreeBusy = Literal["busy", "free"]
Direction = Literal["both", "to_caldav", "to_dingtalk"]
ConflictPolicy = Literal["newest", "dingtalk", "caldav"]

# A point in time as the model keeps it: a ``date`` for all-day values, otherwise an
# aware ``datetime`` whose tzinfo is a ``ZoneInfo`` (``ZoneInfo("UTC")`` for UTC).
When = date | datetime


class Side(enum.StrEnum):
    """The two sides of a binding."""

    DINGTALK = "dingtalk"
    CALDAV = "caldav"

    @property
    def other(self) -> Side:
        return Side.CALDAV if self is Side.DINGTALK else Side.DINGTALK


@dataclass(frozen=True, slots=True)
class Attendee:
    """One participant, identified by e-mail (the directory maps unionIds to e-mails)."""

    email: str
    name: str = ""
    partstat: PartStat = "needs-action"
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A recurrence rule in RFC 5545 text (without the ``RRULE:`` prefix) and its EXDATEs.

    ``rrule`` is canonical: parts in the order FREQ, INTERVAL (omitted when 1), COUNT,
    UNTIL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, WKST; translators produce it with
    :func:`syncd.translate` helpers so both sides compare equal.
    """

    rrule: str
    exdates: tuple[When, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """The canonical form of one calendar item.

    ``uid`` is the iCalendar UID (for events born in DingTalk, derived from the DingTalk id).
    ``overrides`` holds moved or edited occurrences of a series, each with ``recurrence_id``
    set to the original start of the occurrence it replaces. ``updated`` is the side's
    last-modified time, used only by the ``newest`` conflict policy and never fingerprinted.
    ``free_busy`` says whether the event blocks its time (iCalendar ``TRANSP``, DingTalk
    ``freeBusyStatus``); at its default ``busy`` it is left out of the fingerprint, so
    fingerprints stored before the field existed still match.
    """

    uid: str
    summary: str
    start: When
    end: When
    description: str = ""
    location: str = ""
    status: Status = "confirmed"
    privacy: Privacy = "public"
    free_busy: FreeBusy = "busy"
    organizer: str | None = None
    attendees: tuple[Attendee, ...] = ()
    reminders: tuple[int, ...] = ()  # minutes before start, sorted ascending
    online_meeting_url: str | None = None
    recurrence: Recurrence | None = None
    recurrence_id: When | None = None
    overrides: tuple[Event, ...] = ()
    updated: datetime | None = field(default=None, compare=False)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    @property
    def timezone(self) -> str | None:
        """IANA name of the start's zone, or None for all-day events."""
        return zone_name(self.start) if isinstance(self.start, datetime) else None

    def fingerprint(self) -> str:
        """A stable hash of every mapped field; equal fingerprints mean the same meeting."""
        return fingerprint(self)


# Fields that never take part in change detection: identity and server bookkeeping.
_UNHASHED = frozenset({"uid", "updated"})
# Fields added after fingerprints were first stored: left out of the fingerprint while they
# hold their default, so a stored fingerprint of an event without them still matches.
_ADDED_DEFAULTS: dict[str, Any] = {"free_busy": "busy"}


def zone_name(value: datetime) -> str:
    """The IANA name of an aware datetime's zone (``UTC`` for any zero-offset UTC tzinfo)."""
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo):
        return tz.key
    if tz is not None and value.utcoffset() == timedelta(0) and str(tz) in {"UTC", "UTC+00:00"}:
        return "UTC"
    raise ValueError(f"datetime {value.isoformat()} has no IANA zone")


def encode_when(value: When) -> str:
    """Canonical text of a date or aware datetime.

    ``2025-03-01`` for a date, ``2025-03-01T10:00:00[Asia/Shanghai]`` for a date-time.
    """
    if isinstance(value, datetime):
        return f"{value.replace(tzinfo=None).isoformat()}[{zone_name(value)}]"
    return value.isoformat()


def decode_when(text: str) -> When:
    """Inverse of :func:`encode_when`."""
    if "[" not in text:
        return date.fromisoformat(text)
    local, zone = text[:-1].split("[", 1)
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))


def to_jsonable(event: Event, *, hashed_only: bool = False) -> dict[str, Any]:
    """Plain-JSON form of an event (used for fingerprints and the store's base snapshots)."""
    out: dict[str, Any] = {}
    for f in fields(event):
        if hashed_only and f.name in _UNHASHED:
            continue
        out[f.name] = _jsonable(getattr(event, f.name), hashed_only)
    return out


def _jsonable(value: Any, hashed_only: bool) -> Any:
    if isinstance(value, Event):
        return to_jsonable(value, hashed_only=hashed_only)
    if isinstance(value, date):  # datetime is a date too
        return encode_when(value)
    if isinstance(value, Attendee):
        return [value.email.lower(), value.name, value.partstat, value.optional]
    if isinstance(value, Recurrence):
        return {"rrule": value.rrule, "exdates": sorted(encode_when(d) for d in value.exdates)}
    if isinstance(value, tuple):
        items = [_jsonable(v, hashed_only) for v in value]
        return sorted(items, key=json.dumps) if hashed_only else items
    return value


def from_jsonable(data: dict[str, Any]) -> Event:
    """Inverse of :func:`to_jsonable` (with ``hashed_only=False``)."""
    rec = data.get("recurrence")
    updated = data.get("updated")
    return Event(
        uid=data["uid"],
        summary=data["summary"],
        start=decode_when(data["start"]),
        end=decode_when(data["end"]),
        description=data["description"],
        location=data["location"],
        status=data["status"],
        privacy=data["privacy"],
        free_busy=data.get("free_busy", "busy"),
        organizer=data["organizer"],
        attendees=tuple(Attendee(a[0], a[1], a[2], a[3]) for a in data["attendees"]),
        reminders=tuple(data["reminders"]),
        online_meeting_url=data["online_meeting_url"],
        recurrence=(
            Recurrence(rec["rrule"], tuple(decode_when(d) for d in rec["exdates"])) if rec else None
        ),
        recurrence_id=decode_when(data["recurrence_id"]) if data["recurrence_id"] else None,
        overrides=tuple(from_jsonable(o) for o in data["overrides"]),
        updated=_as_datetime(decode_when(updated)) if updated else None,
    )


def _as_datetime(value: When) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date-time, got {value!r}")
    return value


def fingerprint(event: Event) -> str:
    """SHA-256 over the canonical JSON of every mapped field (order-insensitive lists).

    Fields in ``_ADDED_DEFAULTS`` are left out while they hold their default.
    """
    data = _without_added_defaults(to_jsonable(event, hashed_only=True))
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _without_added_defaults(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if _ADDED_DEFAULTS.get(k, object()) != v}
    out["overrides"] = [_without_added_defaults(o) for o in data["overrides"]]
    return out


# --- identity and sync state -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindingRef:
    """Names one binding of one tenant: the unit of reconciliation and of locking."""

    tenant: str
    binding: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.binding}"


@dataclass(frozen=True, slots=True)
class Remote:
    """One item as read from a side: its id there, its etag, and its canonical form.

    ``id`` is the DingTalk event id or the CalDAV href. ``event`` is None when the item
    could not be translated; ``error`` then says why (the item is left alone, never deleted).
    """

    id: str
    etag: str | None
    event: Event | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one side reports since its cursor.

    ``complete`` is True when ``items`` is a full listing (first sync, stale cursor, or
    the daily full reconcile): then a mapped item that is absent was deleted. Otherwise
    ``items`` holds changed items and ``deleted`` the ids reported gone.

    ``window`` is the ``[start, end)`` range of event starts a complete listing covers
    (DingTalk lists at most a year per call); None means every event. A mapped item
    whose start lies outside it is not listed, and its absence means nothing ("left the
    window" is not "deleted"; see docs/design.md).
    """

    items: tuple[Remote, ...]
    deleted: tuple[str, ...]
    cursor: str | None
    complete: bool
    window: tuple[datetime, datetime] | None = None

    def covers(self, event: Event | None) -> bool:
        """Whether a complete listing would surely have listed ``event`` (unknown: yes).

        A day of slack on each edge keeps all-day starts and zone offsets from ever
        reading as "absent" at the window's edge.
        """
        if self.window is None or event is None:
            return True
        start = event.start
        if not isinstance(start, datetime):
            start = datetime(start.year, start.month, start.day, tzinfo=ZoneInfo("UTC"))
        low, high = self.window
        return low + timedelta(days=1) <= start < high - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PairState:
    """The store's record of one mapped pair, as of the last successful sync.

    ``base`` is the canonical event both sides agreed on; the fingerprints are those of
    what each side held (or what we wrote to it) at that time, which is how our own
    writes are recognised when they come back (echo suppression).

    ``dingtalk_held`` / ``caldav_held`` are what each side held at that time when it
    differs from ``base`` (a side that cannot store every field, or rewrites some); None
    means "the side held ``base``". The merge compares each side against what it held, so
    a field a side could not keep never reads as that side's edit.

    ``caldav_etag`` / ``dingtalk_etag`` (DingTalk's ``updateTime``) are what each side's
    item had then: a write planned from a listing that did not mention the item is sent
    under it, so a change made since (an edit racing a deletion) fails the write instead
    of being overwritten or deleted.
    """

    uid: str
    dingtalk_id: str | None
    caldav_href: str | None
    dingtalk_fp: str | None
    caldav_fp: str | None
    caldav_etag: str | None
    base: Event | None
    origin: Side = Side.DINGTALK
    dingtalk_held: Event | None = None
    caldav_held: Event | None = None
    dingtalk_etag: str | None = None

    def ids(self) -> dict[Side, str | None]:
        return {Side.DINGTALK: self.dingtalk_id, Side.CALDAV: self.caldav_href}


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One person of a tenant's directory (imported from DingTalk or written in YAML)."""

    union_id: str
    email: str
    name: str = ""
    userid: str = ""
    departments: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "union_id": self.union_id,
            "email": self.email,
            "name": self.name,
            "userid": self.userid,
            "departments": list(self.departments),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirectoryUser:
        return cls(
            union_id=str(data["union_id"]),
            email=str(data["email"]),
            name=str(data.get("name", "")),
            userid=str(data.get("userid", "")),
            departments=tuple(int(d) for d in data.get("departments", ())),
        )


@dataclass(frozen=True, slots=True)
class OrgDirectory:
    """A DingTalk organisation's users and department tree (``parents``: dept -> parent).

    The root department is 1 and has no parent.
    """

    users: tuple[DirectoryUser, ...] = ()
    parents: tuple[tuple[int, int], ...] = ()
    fetched_at: float = 0.0

    def descendants(self, department: int) -> frozenset[int]:
        """``department`` and every department below it."""
        children: dict[int, list[int]] = {}
        for child, parent in self.parents:
            children.setdefault(parent, []).append(child)
        found, todo = {department}, [department]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return frozenset(found)

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": [u.as_dict() for u in self.users],
            "parents": [list(p) for p in self.parents],
            "fetched_at": self.fetched_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrgDirectory:
        return cls(
            users=tuple(DirectoryUser.from_dict(u) for u in data.get("users", ())),
            parents=tuple((int(c), int(p)) for c, p in data.get("parents", ())),
            fetched_at=float(data.get("fetched_at", 0.0)),
        )
