"""Time values: IANA zones, UTC aliases, Windows and vendor TZIDs, all-day dates.

Every timed value in the model is an aware ``datetime`` whose tzinfo is a ``ZoneInfo``
(``ZoneInfo("UTC")`` for UTC), without microseconds. All-day values are ``date`` objects
and never pass through UTC. Floating iCalendar times take the tenant's zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from syncd.errors import BrokenCalendarData
from syncd.model import When
from syncd.translate._tzmatch import match_custom_zone
from syncd.translate._winnames import DISPLAY_TO_WINDOWS

log = structlog.get_logger(__name__)

UTC = ZoneInfo("UTC")
_UTC_ALIASES = frozenset(
    {
        "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Universal", "Universal",
        "Etc/Zulu", "Zulu", "Etc/Greenwich", "Greenwich", "GMT0", "Etc/GMT0", "Etc/GMT+0",
        "Etc/GMT-0", "GMT+0", "GMT-0", "Z",
    }
)  # fmt: skip


def zone(name: str) -> ZoneInfo | None:
    """Resolve a zone name: IANA, UTC aliases, Windows names, ``/vendor/.../Area/City``."""
    name = name.strip().strip('"')
    if name in _UTC_ALIASES:
        return UTC
    found = _iana(name) or _iana(WINDOWS_TO_OLSON.get(name, ""))
    if found is None and name.startswith("/"):
        parts = name.strip("/").split("/")
        for i in range(len(parts) - 1, -1, -1):  # the longest IANA-looking suffix wins
            found = found or _iana("/".join(parts[i:]))
    if found is not None and found.key in _UTC_ALIASES:
        return UTC
    return found


_DISPLAY_OFFSET = re.compile(r"^\((?:UTC|GMT)\s*(?:([+-])(\d{1,2})[:.]?(\d{2}))?\)\s*")


def _display_key(name: str) -> str:
    """``(GMT+07.00) Bangkok\\, Hanoi`` and ``(UTC+07:00) Bangkok, Hanoi`` alike."""
    text = " ".join(name.strip().strip('"').replace("\\", "").split())
    match = _DISPLAY_OFFSET.match(text.upper())
    if match is None:
        return ""
    sign, hours, minutes = match.groups()
    offset = f"{sign}{int(hours):02d}:{minutes}" if sign else ""
    return f"(UTC{offset}) {text[match.end() :].casefold()}"


_DISPLAY = {_display_key(k): v for k, v in DISPLAY_TO_WINDOWS.items()}


def display_zone(name: str) -> ZoneInfo | None:
    """The zone of a Windows display name, as Outlook and Exchange write TZIDs.

    ``(UTC+07:00) Bangkok, Hanoi, Jakarta`` -> SE Asia Standard Time -> Asia/Bangkok,
    through CLDR's names (:mod:`._winnames`) and icalendar's Windows table; older
    spellings (``GMT``, ``+07.00``) and case or spacing differences are accepted.
    """
    windows = _DISPLAY.get(_display_key(name))
    return zone(windows) if windows else None


def _iana(name: str) -> ZoneInfo | None:
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def tenant_zone(name: str) -> ZoneInfo:
    """The tenant's zone for floating times (UTC when the name is not resolvable)."""
    return zone(name) or UTC


def in_zone(value: datetime, default: str) -> datetime:
    """``value`` as an aware datetime in a ``ZoneInfo``; naive values are in ``default``."""
    value = value.replace(microsecond=0)
    tz = value.tzinfo
    if tz is None:
        return value.replace(tzinfo=tenant_zone(default))
    resolved = _resolve_tzinfo(tz, value)
    if resolved is None:
        return value.astimezone(UTC)
    if isinstance(tz, ZoneInfo):
        return value.replace(tzinfo=resolved)  # an alias of the same zone: keep wall time
    return value.astimezone(resolved)


def _resolve_tzinfo(tz: tzinfo, value: datetime) -> ZoneInfo | None:
    if isinstance(tz, ZoneInfo):
        return zone(tz.key) or tz
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(key, str) and (found := zone(key)) is not None:
        return found
    if value.utcoffset() == timedelta(0) and str(value.tzname()).upper() in {"UTC", "Z", "GMT"}:
        return UTC
    tzid = getattr(tz, "_tzid", None)
    if isinstance(tzid, str) and (found := zone(tzid)) is not None:
        return found
    matched = match_custom_zone(tz, value)
    log.warning("custom_timezone", tzid=tzid or str(tz), matched=matched.key if matched else None)
    return matched


def as_date(value: When) -> date:
    """The calendar date of a value (a datetime's own local date)."""
    return value.date() if isinstance(value, datetime) else value


def like(value: When, ref: When) -> When:
    """``value`` in the same kind as ``ref``: a date for all-day, else a datetime in ref's zone.

    A date taken to a timed reference gets the reference's wall-clock time on that date.
    """
    if not isinstance(ref, datetime):
        return as_date(value)
    if isinstance(value, datetime):
        return value.astimezone(ref.tzinfo)
    return datetime.combine(value, ref.timetz().replace(tzinfo=None), tzinfo=ref.tzinfo)


def fix_end(start: When, end: When | None) -> When:
    """A consistent end: same kind as start, never before it, all-day at least one day."""
    if end is None:
        return start + timedelta(days=1) if not isinstance(start, datetime) else start
    if not isinstance(start, datetime):
        day = as_date(end)
        return day if day > start else start + timedelta(days=1)
    end = end if isinstance(end, datetime) else datetime.combine(end, start.timetz())
    end = end.astimezone(start.tzinfo)
    return end if end >= start else start


# --- DingTalk JSON --------------------------------------------------------------------------


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date-time as DingTalk sends it (``Z`` or an offset; naive = UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise BrokenCalendarData(f"bad date-time {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_date(text: str) -> date:
    """Parse ``yyyy-MM-dd`` (or ``yyyyMMdd``)."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except (ValueError, AttributeError) as exc:
        raise BrokenCalendarData(f"bad date {text!r}") from exc


def from_dingtalk(obj: object, all_day: bool, default_zone: str) -> When:
    """One DingTalk ``start``/``end`` object as a model value."""
    if not isinstance(obj, dict):
        raise BrokenCalendarData(f"bad start/end {obj!r}", field="start")
    if obj.get("date"):
        return parse_date(str(obj["date"]))
    if not obj.get("dateTime"):
        raise BrokenCalendarData(f"start/end without date or dateTime: {obj!r}", field="start")
    instant = parse_iso(str(obj["dateTime"]))
    named = zone(str(obj.get("timeZone") or "")) or tenant_zone(default_zone)
    local = instant.astimezone(named).replace(microsecond=0)
    return local.date() if all_day else local


def to_dingtalk(value: When, zone_of: When) -> dict[str, str]:
    """A model value as a DingTalk ``start``/``end`` object (timed values in ``zone_of``'s zone)."""
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    tz = zone_of.tzinfo if isinstance(zone_of, datetime) else value.tzinfo
    local = value.astimezone(tz)
    assert isinstance(local.tzinfo, ZoneInfo)
    return {"dateTime": local.isoformat(), "timeZone": local.tzinfo.key}


def utc_text(value: datetime) -> str:
    """``2025-03-01T02:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_sort_key(value: When) -> str:
    """A sort key ordering dates and datetimes together (dates at 00:00 UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return value.strftime("%Y%m%dT000000")
