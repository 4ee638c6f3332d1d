"""Reading a VEVENT's times: DTSTART, DTEND / DURATION, RRULE and EXDATE (helpers of :mod:`.ical`).

Value types are checked as RFC 5545 wants them (3.8.2.2, 3.6.1, 3.3.10): DTEND of
DTSTART's type, floating or not alike; an all-day DURATION in whole days; UNTIL in UTC
for a timed series, or else no occurrence on which readers of it disagree. Input that
breaks this has no single reading and raises BrokenCalendarData naming the properties.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import structlog
from icalendar import Component

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import When
from syncd.translate import _expand, _time
from syncd.translate._icalread import as_list
from syncd.translate._rrule import canonical_rrule, parse_parts, until_readings, until_value
from syncd.translate._vtimezone import CalendarZones
from syncd.translate.context import Context

log = structlog.get_logger(__name__)


def when(prop: Any, ctx: Context, what: str, zones: CalendarZones) -> When:
    """A DATE / DATE-TIME property value (``vDDDTypes``) as a model value.

    A TZID is resolved within the calendar (``zones``), never through icalendar's
    process-wide cache; a floating time takes the tenant's zone.
    """
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        tzid = (getattr(prop, "params", None) or {}).get("TZID")
        if tzid and not _is_utc(value):
            return zones.localize(value.replace(tzinfo=None, microsecond=0), str(tzid), what)
        return _time.in_zone(value, ctx.timezone)
    if isinstance(value, date):
        return value
    raise BrokenCalendarData(f"{what} is not a date or date-time: {prop!r}", field=what.lower())


def _is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.tzinfo == _time.UTC


def kind(prop: Any) -> str:
    """``date``, ``floating`` or ``zoned`` (a TZID or UTC): the value type RFC 5545 compares."""
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        return "date"
    has_tzid = bool((getattr(prop, "params", None) or {}).get("TZID"))
    return "zoned" if value.tzinfo is not None or has_tzid else "floating"


def times(ev: Component, ctx: Context, zones: CalendarZones) -> tuple[When, When]:
    """DTSTART and the (exclusive) end from DTEND or DURATION, made consistent.

    RFC 5545 (3.8.2.2, 3.6.1): DTEND has DTSTART's value type, floating or not alike, and
    the DURATION of an all-day event is whole days or weeks. Input that breaks this has
    no single reading and raises BrokenCalendarData naming the properties.
    """
    if ev.get("DTSTART") is None:
        raise BrokenCalendarData("VEVENT without DTSTART", field="dtstart")
    start = when(ev["DTSTART"], ctx, "DTSTART", zones)
    end: When | None = None
    if ev.get("DTEND") is not None:
        _same_kind(ev["DTSTART"], ev["DTEND"])
        end = when(ev["DTEND"], ctx, "DTEND", zones)
    elif ev.get("DURATION") is not None:
        end = _by_duration(start, ev["DURATION"])
    if end is not None and type(end) is type(start) and end < start:
        start, end = end, start  # swapped by the producer: take the earlier one as start
    return start, _time.fix_end(start, end)


def _same_kind(dtstart: Any, dtend: Any) -> None:
    first, second = kind(dtstart), kind(dtend)
    if first != second:
        raise BrokenCalendarData(
            f"DTSTART is {_KIND_TEXT[first]} but DTEND is {_KIND_TEXT[second]}", field="dtend"
        )


_KIND_TEXT = {"date": "a DATE", "floating": "a floating DATE-TIME", "zoned": "a zoned DATE-TIME"}


def _by_duration(start: When, prop: Any) -> When:
    length = getattr(prop, "dt", None)
    if not isinstance(length, timedelta):
        raise BrokenCalendarData(f"bad DURATION {prop!r}", field="duration")
    if isinstance(start, datetime):
        return start + length
    if length.seconds or length.microseconds:
        text = prop.to_ical().decode() if hasattr(prop, "to_ical") else str(length)
        raise BrokenCalendarData(
            f"DTSTART is a DATE but DURATION {text} is not whole days", field="duration"
        )
    return start + timedelta(days=max(1, length.days))


def rrule(ev: Component, start: When) -> str | None:
    """The canonical RRULE; RDATE, EXRULE and several RRULEs cannot be held by the model."""
    for name in ("RDATE", "EXRULE"):
        if ev.get(name) is not None:
            raise Unrepresentable(f"{name} is not supported", field=name.lower())
    rules = as_list(ev.get("RRULE"))
    if len(rules) > 1:
        raise Unrepresentable("several RRULEs in one event", field="rrule")
    if not rules:
        return None
    text = rules[0].to_ical().decode() if hasattr(rules[0], "to_ical") else str(rules[0])
    if not text.strip():
        log.info("empty_rrule_ignored", uid=str(ev.get("UID", "")))
        return None
    rule = canonical_rrule(text, start)
    if _ends_before(rule, start):
        raise BrokenCalendarData("RRULE UNTIL is before DTSTART: no occurrence", field="rrule")
    if isinstance(start, datetime):
        _until_agreed(text, rule, start)
    return rule


def _until_agreed(text: str, rule: str, start: datetime) -> None:
    """BrokenCalendarData if readers of an UNTIL of the wrong type disagree on an occurrence.

    RFC 5545 wants UNTIL in UTC for a timed DTSTART. A DATE or a local time is read
    differently by different libraries and servers (see ``until_readings``); the
    canonical rule takes the earliest reading, which is every reader's when no
    occurrence falls between the readings.
    """
    raw = parse_parts(text).get("UNTIL", "")
    readings = until_readings(raw, start) if raw else None
    if readings is None:
        return
    found = _expand.first_between(rule, start, *readings)
    if found is not None:
        kind_text = "a DATE" if "T" not in raw else "a local time"
        raise BrokenCalendarData(
            f"RRULE UNTIL={raw} is {kind_text} on a timed series: readers disagree"
            f" whether {found:%Y-%m-%d %H:%M %Z} is an occurrence",
            field="rrule",
        )


def _ends_before(rule: str, start: When) -> bool:
    """True when the rule's UNTIL lies before DTSTART (servers refuse such a series)."""
    until = until_value(parse_parts(rule))
    if until is None or isinstance(until, datetime) != isinstance(start, datetime):
        return False
    return until < start  # both dates, or both aware datetimes


def exdates(ev: Component, ctx: Context, zones: CalendarZones) -> list[When]:
    """Every EXDATE value."""
    out: list[When] = []
    for prop in as_list(ev.get("EXDATE")):
        out.extend(when(item, ctx, "EXDATE", zones) for item in getattr(prop, "dts", ()))
    return out
