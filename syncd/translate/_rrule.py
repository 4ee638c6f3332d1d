"""Recurrence rules: the canonical RRULE text, and RRULE ⇄ DingTalk ``recurrence``.

:func:`canonical_rrule` is the single normaliser both directions use, so an RRULE read
from CalDAV and the one rebuilt from DingTalk compare equal. Canonical form: parts in
the order FREQ, INTERVAL (omitted when 1), COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH,
BYSETPOS, WKST, then any other part alphabetically; list values sorted and de-duplicated;
WKST only where it can matter; with a ``start``, implicit parts made explicit (a weekly
rule names its weekday, a monthly one its day of month, a yearly one its month and day),
``FREQ=DAILY;BYDAY=..`` written as the equivalent weekly rule, ``BYDAY=TU;BYSETPOS=2``
as ``BYDAY=2TU``, and UNTIL given as a date for all-day starts or in UTC for timed ones
(an UNTIL of the wrong type at its earliest reading: see :func:`until_readings`). A COUNT
over :data:`~.limits.MAX_COUNT` is refused (Unrepresentable).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from syncd.errors import BrokenCalendarData
from syncd.model import When
from syncd.translate import limits
from syncd.translate._time import UTC

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
ORDER = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS")
_INT_LISTS: tuple[str, ...] = (
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYHOUR",
    "BYMINUTE",
    "BYSECOND",
)
_FREQS = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")


def parse_parts(text: str) -> dict[str, str]:
    """``FREQ=WEEKLY;BYDAY=MO`` (optionally ``RRULE:``-prefixed) as an upper-cased dict."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for item in filter(None, body.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise BrokenCalendarData(f"bad RRULE part {item!r}", field="rrule")
        parts[key.strip().upper()] = value.strip().upper()
    if parts.get("FREQ") not in _FREQS:
        raise BrokenCalendarData(f"RRULE without a valid FREQ: {text!r}", field="rrule")
    return parts


def split_byday(value: str) -> list[tuple[int, str]]:
    """``1MO,-1FR,TU`` as ``[(1, "MO"), (-1, "FR"), (0, "TU")]``."""
    out = []
    for item in value.split(","):
        match = _BYDAY.match(item.strip())
        if match is None:
            raise BrokenCalendarData(f"bad BYDAY value {item!r}", field="rrule")
        out.append((int(match.group(1) or 0), match.group(2)))
    return out


def join_byday(days: list[tuple[int, str]]) -> str:
    """Inverse of :func:`split_byday`, sorted by weekday then ordinal, de-duplicated."""
    unique = sorted(set(days), key=lambda d: (WEEKDAYS.index(d[1]), d[0]))
    return ",".join(f"{n}{day}" if n else day for n, day in unique)


def _int_list(key: str, value: str) -> str:
    try:
        numbers = sorted({int(v) for v in value.split(",")})
    except ValueError as exc:
        raise BrokenCalendarData(f"bad {key} value {value!r}", field="rrule") from exc
    return ",".join(str(n) for n in numbers)


def canonical_rrule(text: str, start: When | None = None) -> str:
    """The canonical text of an RRULE (see the module docstring); ``start`` is DTSTART."""
    parts = parse_parts(text)
    for key in _INT_LISTS:
        if key in parts:
            parts[key] = _int_list(key, parts[key])
    if "BYDAY" in parts:
        parts["BYDAY"] = join_byday(split_byday(parts["BYDAY"]))
    _number(parts, "INTERVAL")
    _number(parts, "COUNT")
    if int(parts.get("COUNT", "1")) < 1:  # COUNT=0 or negative: no count at all
        del parts["COUNT"]
    if int(parts.get("COUNT", "1")) > limits.MAX_COUNT:
        raise limits.over("RRULE COUNT", int(parts["COUNT"]), limits.MAX_COUNT)
    if parts.get("INTERVAL") == "1":
        del parts["INTERVAL"]
    if start is not None:
        _explicit(parts, start)
        if "UNTIL" in parts:
            parts["UNTIL"] = _until(parts["UNTIL"], start)
    _setpos_to_ordinal(parts)
    _drop_idle_wkst(parts)
    return render(parts)


def render(parts: dict[str, str]) -> str:
    """Parts in canonical order (``WKST`` after the known parts, others alphabetically)."""
    keys = [k for k in ORDER if k in parts] + sorted(set(parts) - {*ORDER, "WKST"})
    keys += ["WKST"] if "WKST" in parts else []
    return ";".join(f"{k}={parts[k]}" for k in keys)


def _number(parts: dict[str, str], key: str) -> None:
    if key in parts:
        try:
            parts[key] = str(int(parts[key]))
        except ValueError as exc:
            raise BrokenCalendarData(f"bad {key} {parts[key]!r}", field="rrule") from exc


def _explicit(parts: dict[str, str], start: When) -> None:
    """Spell out what the rule takes from DTSTART, so equal rules have equal text."""
    freq = parts["FREQ"]
    has_day = any(k in parts for k in _DAY_PARTS)
    if freq == "WEEKLY" and not has_day:
        parts["BYDAY"] = WEEKDAYS[start.weekday()]
    elif freq in ("MONTHLY", "YEARLY") and not has_day:
        parts["BYMONTHDAY"] = str(start.day)
        if freq == "YEARLY" and "BYMONTH" not in parts:
            parts["BYMONTH"] = str(start.month)
    plain_days = "BYDAY" in parts and all(n == 0 for n, _ in split_byday(parts["BYDAY"]))
    others = set(parts) - {"FREQ", "COUNT", "UNTIL", "BYDAY", "WKST"}
    if freq == "DAILY" and plain_days and not others:
        parts["FREQ"] = "WEEKLY"


def _setpos_to_ordinal(parts: dict[str, str]) -> None:
    """``FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2`` means the same as ``BYDAY=2TU``."""
    if parts["FREQ"] not in ("MONTHLY", "YEARLY") or "BYSETPOS" not in parts:
        return
    days = split_byday(parts.get("BYDAY", "")) if "BYDAY" in parts else []
    setpos = parts["BYSETPOS"].split(",")
    others = set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYSETPOS", "WKST"}
    if parts["FREQ"] == "YEARLY":
        others -= {"BYMONTH"}
        if "," in parts.get("BYMONTH", ","):
            return
    if len(days) == 1 and days[0][0] == 0 and len(setpos) == 1 and not others:
        n = int(setpos[0])
        if -5 <= n <= 5 and n != 0:
            parts["BYDAY"] = f"{n}{days[0][1]}"
            del parts["BYSETPOS"]


def _drop_idle_wkst(parts: dict[str, str]) -> None:
    wkst = parts.get("WKST")
    if wkst is None:
        return
    weekly_sets = parts["FREQ"] == "WEEKLY" and ("INTERVAL" in parts or "BYSETPOS" in parts)
    if wkst == "MO" or not (weekly_sets or "BYWEEKNO" in parts):
        del parts["WKST"]


def _until(value: str, start: When) -> str:
    """UNTIL as a date for all-day starts, as a UTC date-time for timed ones.

    An UNTIL of another type than DTSTART (RFC 5545 requires the same) is read the
    earliest way a reader does (see :func:`until_readings`).
    """
    moment = _until_moment(value)
    if not isinstance(start, datetime):
        return (moment.date() if isinstance(moment, datetime) else moment).strftime("%Y%m%d")
    readings = until_readings(value, start)
    if readings is not None:
        moment = readings[0]
    assert isinstance(moment, datetime)
    assert moment.tzinfo is not None
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _until_moment(value: str) -> date | datetime:
    try:
        if "T" in value:
            local = datetime.strptime(value.rstrip("Z")[:15], "%Y%m%dT%H%M%S")
            return local.replace(tzinfo=UTC) if value.endswith("Z") else local
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError as exc:
        raise BrokenCalendarData(f"bad UNTIL {value!r}", field="rrule") from exc


def until_readings(value: str, start: datetime) -> tuple[datetime, datetime] | None:
    """The earliest and latest instant readers take an UNTIL of the wrong type for.

    None when UNTIL is a UTC date-time, as RFC 5545 requires for a timed DTSTART.
    A DATE ``D`` is read as D 00:00 UTC (recurring-ical-events), as D 00:00 in the start's
    zone (dateutil on local times), as D at the start's time (vobject, so Radicale) or as
    the whole of D. A local date-time is read in the start's zone or in UTC.
    """
    moment = _until_moment(value)
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return None
    tz = start.tzinfo
    if isinstance(moment, datetime):
        readings = [moment.replace(tzinfo=tz), moment.replace(tzinfo=UTC)]
    else:
        midnight = datetime.combine(moment, time())
        last = datetime.combine(moment, time(23, 59, 59))
        readings = [
            midnight.replace(tzinfo=tz),
            midnight.replace(tzinfo=UTC),
            last.replace(tzinfo=tz),
        ]
    return min(readings), max(readings)


def until_value(parts: dict[str, str]) -> When | None:
    """The canonical UNTIL as a date or a UTC datetime."""
    value = parts.get("UNTIL")
    if value is None:
        return None
    if "T" in value:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.strptime(value, "%Y%m%d").date()
