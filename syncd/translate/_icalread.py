"""Reading one VEVENT's properties into model values (helpers of :mod:`.ical`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog
from icalendar import Component

from syncd.errors import BrokenCalendarData
from syncd.model import Attendee, FreeBusy, PartStat, Privacy, Status, When
from syncd.translate import _common, _people, _time
from syncd.translate.context import Context

log = structlog.get_logger(__name__)

_STATUS: dict[str, Status] = {
    "CONFIRMED": "confirmed",
    "TENTATIVE": "tentative",
    "CANCELLED": "cancelled",
}
_CLASS: dict[str, Privacy] = {
    "PUBLIC": "public",
    "PRIVATE": "private",
    "CONFIDENTIAL": "confidential",
}
_PARTSTAT: dict[str, PartStat] = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
}


def as_list(value: Any) -> list[Any]:
    """A property that may occur once or several times, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def status(ev: Component) -> Status:
    """STATUS (absent: confirmed)."""
    return _STATUS.get(str(ev.get("STATUS", "CONFIRMED")).upper(), "confirmed")


def privacy(ev: Component) -> Privacy:
    """CLASS (absent: public; unknown values: private, as RFC 5545 says)."""
    value = ev.get("CLASS")
    return "public" if value is None else _CLASS.get(str(value).upper(), "private")


def free_busy(ev: Component) -> FreeBusy:
    """TRANSP: TRANSPARENT is free; OPAQUE, absent or unknown values are busy."""
    return "free" if str(ev.get("TRANSP", "")).strip().upper() == "TRANSPARENT" else "busy"


def organizer(ev: Component) -> str | None:
    """The organizer's normalised e-mail, or None."""
    value = ev.get("ORGANIZER")
    return _people.normal_email(str(value)) if value else None


def attendees(ev: Component, org: str | None) -> tuple[Attendee, ...]:
    """ATTENDEE properties (the organizer and duplicates left out)."""
    people = []
    for prop in as_list(ev.get("ATTENDEE")):
        params = getattr(prop, "params", {}) or {}
        email = _people.normal_email(str(prop))
        if not email:
            continue
        role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
        people.append(
            Attendee(
                email=email,
                name=_common.clean_name(params.get("CN", "")),
                partstat=_PARTSTAT.get(str(params.get("PARTSTAT", "")).upper(), "needs-action"),
                optional=role in ("OPT-PARTICIPANT", "NON-PARTICIPANT"),
            )
        )
    return _people.clean_people(org, people)


def reminders(ev: Component, start: When, end: When, ctx: Context) -> tuple[int, ...]:
    """VALARM triggers as whole minutes before the start (alarms after it are skipped)."""
    found = []
    for alarm in ev.walk("VALARM"):
        minutes = _alarm_minutes(alarm.get("TRIGGER"), start, end, ctx)
        if minutes is None:
            log.info("alarm_skipped", trigger=str(alarm.get("TRIGGER")))
        else:
            found.append(minutes)
    return _common.reminders(found)


def alarm_minutes(alarm: Component, start: When, end: When, ctx: Context) -> int | None:
    """One VALARM's trigger in whole minutes before the start (None: after it, or unreadable)."""
    return _alarm_minutes(alarm.get("TRIGGER"), start, end, ctx)


def _alarm_minutes(trigger: Any, start: When, end: When, ctx: Context) -> int | None:
    value = getattr(trigger, "dt", None)
    anchor = start
    if str((getattr(trigger, "params", None) or {}).get("RELATED", "START")).upper() == "END":
        anchor = end
    if isinstance(value, timedelta):
        before = -(value + (_time_of(anchor, ctx) - _time_of(start, ctx)))
    elif isinstance(value, datetime):
        before = _time_of(start, ctx) - _time.in_zone(value, ctx.timezone)
    else:
        return None
    seconds = before.total_seconds()
    return None if seconds < 0 else math.floor(seconds / 60)


def _time_of(value: When, ctx: Context) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, datetime.min.time(), tzinfo=_time.tenant_zone(ctx.timezone))


def meeting_url(ev: Component) -> str | None:
    """CONFERENCE (RFC 7986) if present, else URL."""
    for name in ("CONFERENCE", "URL"):
        values = as_list(ev.get(name))
        if values and str(values[0]).strip():
            return str(values[0]).strip()
    return None


def updated(ev: Component, ctx: Context) -> datetime | None:
    """LAST-MODIFIED, else DTSTAMP, in UTC."""
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        prop = ev.get(name)
        value = getattr(prop, "dt", None)
        if isinstance(value, datetime):
            return _time.in_zone(value, "UTC").astimezone(_time.UTC)
    return None


def names(components: Iterable[Component]) -> set[str]:
    """The component names present."""
    return {str(c.name) for c in components}


def newest(masters: list[Component]) -> Component:
    """Of several VEVENTs with one UID and no RECURRENCE-ID, the highest SEQUENCE.

    Only an edit history (every SEQUENCE different) is resolved this way; otherwise the
    resource is ambiguous and BrokenCalendarData is raised.
    """
    sequences = [_sequence(m) for m in masters]
    if len(set(sequences)) != len(sequences):
        raise BrokenCalendarData("several VEVENTs with one UID and no RECURRENCE-ID", field="uid")
    log.warning("older_copies_ignored", uid=str(masters[0].get("UID", "")), count=len(masters) - 1)
    return masters[sequences.index(max(sequences))]


def _sequence(ev: Component) -> int:
    try:
        return int(str(ev.get("SEQUENCE", 0)))
    except ValueError:
        return 0
