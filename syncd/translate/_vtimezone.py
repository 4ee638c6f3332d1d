"""The TZID of a DATE-TIME, resolved within its own calendar.

icalendar keeps the zones it builds from VTIMEZONEs in one cache for the whole process,
keyed by TZID, and the first definition wins: a later resource whose VTIMEZONE gives the
same TZID other rules (Outlook's ``Customized Time Zone``, a display name written by
another Exchange version) would be read with the earlier resource's rules. So a
:class:`CalendarZones` builds each VTIMEZONE of *its* calendar itself and re-reads the
wall-clock time written next to the TZID:

1. a name ``_time.zone`` knows (IANA, a UTC alias, a Windows id, a vendor-prefixed IANA
   name) is that zone, as icalendar and most clients read it;
2. else the calendar's own VTIMEZONE, matched to the IANA zone with the same offsets
   around the value (a display name's zone is tried first), or UTC at that instant;
3. else an Outlook/Exchange display name (``(UTC+07:00) Bangkok, Hanoi, Jakarta``);
4. else BrokenCalendarData: RFC 5545 requires a VTIMEZONE for every TZID used.

A VTIMEZONE over :mod:`.limits` (too many, too many parts, a rule that is not yearly)
is refused when a value needs it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from icalendar import Calendar, Component

from syncd.errors import BrokenCalendarData
from syncd.translate import _time, limits
from syncd.translate._rrule import parse_parts
from syncd.translate._tzmatch import match_custom_zone

log = structlog.get_logger(__name__)

_FAILURES = (ValueError, TypeError, KeyError, OverflowError, AttributeError)


class CalendarZones:
    """The VTIMEZONEs of one calendar, and how its TZIDs resolve (see the module docstring)."""

    def __init__(self, components: list[Component]) -> None:
        if len(components) > limits.MAX_TIMEZONES:
            raise limits.over("number of VTIMEZONEs", len(components), limits.MAX_TIMEZONES)
        self._defs = {_key(str(c.get("TZID", ""))): c for c in components}
        self._built: dict[str, tzinfo | str] = {}  # a zone, or why it cannot be built
        self._matched: dict[str, ZoneInfo | None] = {}  # first match per TZID
        self._searches = limits.MAX_ZONE_MATCHES

    @classmethod
    def of(cls, cal: Calendar) -> CalendarZones:
        """The zones of a parsed calendar."""
        return cls([c for c in cal.subcomponents if c.name == "VTIMEZONE"])

    def localize(self, wall: datetime, tzid: str, what: str) -> datetime:
        """The instant written as ``wall`` (naive) with ``TZID=tzid``, in a ZoneInfo."""
        named = _time.zone(tzid)
        if named is not None:
            return wall.replace(tzinfo=named)
        own = self._own(_key(tzid), what)
        display = _time.display_zone(tzid)
        if own is not None:
            return self._matched_value(wall.replace(tzinfo=own), _key(tzid), display)
        if display is not None:
            return wall.replace(tzinfo=display)
        raise BrokenCalendarData(
            f"{what} TZID {tzid!r} is not a known time zone and has no VTIMEZONE",
            field=what.lower(),
        )

    def _own(self, key: str, what: str) -> tzinfo | None:
        if key not in self._defs:
            return None
        if key not in self._built:
            self._built[key] = _build(self._defs[key])
        built = self._built[key]
        if isinstance(built, str):
            raise BrokenCalendarData(f"{what}: VTIMEZONE {key!r} {built}", field="vtimezone")
        return built

    def _matched_value(self, custom: datetime, key: str, display: ZoneInfo | None) -> datetime:
        """The value in the IANA zone its VTIMEZONE matches (UTC if none).

        A TZID's first match is reused while it gives the value's offset; a calendar gets
        at most :data:`~.limits.MAX_ZONE_MATCHES` searches (each reads three years of
        offsets), then values of unmatched eras stay in UTC.
        """
        known = self._matched.get(key)
        fits = known is not None and custom.utcoffset() == custom.astimezone(known).utcoffset()
        if not fits and (key not in self._matched or known is not None) and self._searches:
            self._searches -= 1
            assert custom.tzinfo is not None
            found = match_custom_zone(custom.tzinfo, custom, prefer=(display,) if display else ())
            log.info("custom_timezone", tzid=key, matched=found.key if found else None)
            self._matched.setdefault(key, found)
            known, fits = found, found is not None
        return custom.astimezone(known) if fits and known else custom.astimezone(_time.UTC)


def _key(tzid: str) -> str:
    return tzid.strip().strip('"').strip("/")


def _build(component: Component) -> tzinfo | str:
    """The component as a tzinfo, or the reason it is refused."""
    parts = component.subcomponents
    if len(parts) > limits.MAX_ZONE_RULES:
        return f"has {len(parts):,} parts, over syncd's limit of {limits.MAX_ZONE_RULES}"
    try:
        for part in parts:
            for rule in _listed(part.get("RRULE")):
                if parse_parts(rule.to_ical().decode())["FREQ"] != "YEARLY":
                    return "has a rule that is not yearly"
        zone: tzinfo = component.to_tz(lookup_tzid=False)  # type: ignore[attr-defined]
        zone.utcoffset(datetime(2000, 1, 1))  # probes the rules once
    except (*_FAILURES, BrokenCalendarData) as exc:
        return f"cannot be read: {exc}"
    return zone


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
