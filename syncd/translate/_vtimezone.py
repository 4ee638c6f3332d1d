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

import copy
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from icalendar import Calendar, Component

from syncd.errors import BrokenCalendarData
from syncd.translate import _time, limits
from syncd.translate._rrule import parse_parts
from syncd.translate._tzmatch import match_custom_zone, span

log = structlog.get_logger(__name__)

_Match = tuple[ZoneInfo | None, datetime, datetime]
_FAILURES = (ValueError, TypeError, KeyError, OverflowError, AttributeError)


class CalendarZones:
    """The VTIMEZONEs of one calendar, and how its TZIDs resolve (see the module docstring)."""

    def __init__(self, components: list[Component], floor: int = 1) -> None:
        if len(components) > limits.MAX_TIMEZONES:
            raise limits.over("number of VTIMEZONEs", len(components), limits.MAX_TIMEZONES)
        self._defs = {_key(str(c.get("TZID", ""))): c for c in components}
        self._floor = floor  # no value of the calendar lies before this year + 2
        self._built: dict[str, tzinfo | str] = {}  # a zone, or why it cannot be built
        self._matched: dict[str, list[_Match]] = {}  # per TZID: (zone or None, span)
        self._searches = limits.MAX_ZONE_MATCHES

    @classmethod
    def of(cls, cal: Calendar) -> CalendarZones:
        """The zones of a parsed calendar."""
        zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
        return cls(zones, max(1, _earliest_year(cal) - 2))

    def localize(self, wall: datetime, tzid: str, what: str) -> datetime:
        """The instant written as ``wall`` (naive) with ``TZID=tzid``, in a ZoneInfo."""
        named = _time.zone(tzid)
        if named is not None:
            return wall.replace(tzinfo=named)
        own = self._own(_key(tzid), what)
        display = _time.display_zone(tzid)
        if own is not None:
            return self._matched_value(wall, own, _key(tzid), display)
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
            self._built[key] = _build(self._defs[key], self._floor)
        built = self._built[key]
        if isinstance(built, str):
            raise BrokenCalendarData(f"{what}: VTIMEZONE {key!r} {built}", field="vtimezone")
        return built

    def _matched_value(
        self, wall: datetime, own: tzinfo, key: str, display: ZoneInfo | None
    ) -> datetime:
        """The value in the IANA zone its VTIMEZONE matches (UTC if none).

        A match holds over the three years it was checked on (see ``_tzmatch.span``), so
        a value inside them takes the matched zone without reading the VTIMEZONE again.
        A calendar gets at most :data:`~.limits.MAX_ZONE_MATCHES` searches (each reads
        three years of offsets); past them, values outside every span stay in UTC.
        """
        for zone, low, high in self._matched.get(key, ()):
            if low <= wall <= high:
                return (
                    wall.replace(tzinfo=zone)
                    if zone
                    else wall.replace(tzinfo=own).astimezone(_time.UTC)
                )
        custom = wall.replace(tzinfo=own)
        if not self._searches:
            return custom.astimezone(_time.UTC)
        self._searches -= 1
        found = match_custom_zone(own, custom, prefer=(display,) if display else ())
        log.info("custom_timezone", tzid=key, matched=found.key if found else None)
        low, high = (edge.replace(tzinfo=None) for edge in span(custom))
        day = timedelta(days=1)  # a wall time is within a day of its UTC instant
        self._matched.setdefault(key, []).append((found, low + day, high - day))
        return custom.astimezone(found or _time.UTC)


def _key(tzid: str) -> str:
    return tzid.strip().strip('"').strip("/")


def _earliest_year(cal: Calendar) -> int:
    years = []
    for event in cal.walk("VEVENT"):
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            try:
                value = getattr(event.get(name), "dt", None)
            except ValueError:  # icalendar's broken property: reported when read
                value = None
            if isinstance(value, datetime):
                years.append(value.year)
    return min(years, default=1)


def _rebased(component: Component, floor: int) -> Component:
    """A copy whose yearly rules start in ``floor`` if they began earlier and run on.

    dateutil finds a zone's offset by walking each rule from its DTSTART: from 1601, as
    Outlook writes them, that is 400 steps per lookup. The onsets from ``floor`` on are
    the same (the year moves, month, day and time stay).
    """
    out = copy.deepcopy(component)
    for part in out.subcomponents:
        start = getattr(part.get("DTSTART"), "dt", None)
        rules = _listed(part.get("RRULE"))
        if not isinstance(start, datetime) or start.year >= floor or len(rules) != 1:
            continue
        parts = parse_parts(rules[0].to_ical().decode())
        if "COUNT" in parts or parts.get("UNTIL", "9999")[:4] < f"{floor:04d}":
            continue
        try:
            moved = start.replace(year=floor)
        except ValueError:  # 29 February
            continue
        part.pop("DTSTART")
        part.add("DTSTART", moved)
    return out


def _build(component: Component, floor: int) -> tzinfo | str:
    """The component as a tzinfo (rebased to ``floor``), or the reason it is refused."""
    parts = component.subcomponents
    if len(parts) > limits.MAX_ZONE_RULES:
        return f"has {len(parts):,} parts, over syncd's limit of {limits.MAX_ZONE_RULES}"
    try:
        for part in parts:
            for rule in _listed(part.get("RRULE")):
                if parse_parts(rule.to_ical().decode())["FREQ"] != "YEARLY":
                    return "has a rule that is not yearly"
        zone: tzinfo = _rebased(component, floor).to_tz(lookup_tzid=False)  # type: ignore[attr-defined]
        zone.utcoffset(datetime(2000, 1, 1))  # probes the rules once
    except (*_FAILURES, BrokenCalendarData) as exc:
        return f"cannot be read: {exc}"
    return zone


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
