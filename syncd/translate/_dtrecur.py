"""RRULE ⇄ DingTalk ``recurrence`` {pattern, range}.

DingTalk's recurrence object follows Microsoft Graph's ``patternedRecurrence`` (types
daily, weekly, absoluteMonthly, relativeMonthly, absoluteYearly, relativeYearly; range
noEnd, endDate, numbered). Yearly patterns carry no month: the month is the start's.
``relativeMonthly`` with several days means "the n-th of any of these days", which is
``BYDAY=..;BYSETPOS=n``. Anything else raises :class:`~syncd.errors.Unrepresentable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import When
from syncd.translate import _time
from syncd.translate._rrule import (
    WEEKDAYS,
    canonical_rrule,
    parse_parts,
    render,
    split_byday,
    until_value,
)

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_INDEX_NAME = {v: k for k, v in INDEX.items()}
_SUPPORTED = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS"}
_SUPPORTED |= {"WKST"}


def rrule_to_dingtalk(rrule: str, start: When) -> dict[str, Any]:
    """A DingTalk ``recurrence`` for an RRULE; raises Unrepresentable with the reason."""
    parts = parse_parts(canonical_rrule(rrule, start))
    extra = sorted(set(parts) - _SUPPORTED)
    if extra:
        raise Unrepresentable(f"DingTalk has no RRULE {', '.join(extra)}", field="rrule")
    if "COUNT" in parts and "UNTIL" in parts:
        raise Unrepresentable("DingTalk cannot end a series by both COUNT and UNTIL", field="rrule")
    pattern = _pattern(parts, start)
    pattern["interval"] = int(parts.get("INTERVAL", "1"))
    if parts.get("WKST"):
        pattern["firstDayOfWeek"] = DAY_NAMES[WEEKDAYS.index(parts["WKST"])]
    return {"pattern": pattern, "range": _range(parts)}


def _pattern(parts: dict[str, str], start: When) -> dict[str, Any]:
    freq = parts["FREQ"]
    by = {k for k in parts if k.startswith("BY")}
    if freq == "DAILY" and not by:
        return {"type": "daily"}
    if freq == "WEEKLY" and by == {"BYDAY"}:
        return {"type": "weekly", "daysOfWeek": _plain_days(parts["BYDAY"])}
    if freq == "MONTHLY" and by == {"BYMONTHDAY"}:
        return {"type": "absoluteMonthly", "dayOfMonth": _one_day_of_month(parts)}
    if freq == "MONTHLY" and "BYDAY" in by and by <= {"BYDAY", "BYSETPOS"}:
        return {"type": "relativeMonthly", **_relative(parts)}
    if freq == "YEARLY" and parts.get("BYMONTH") == str(start.month):
        if by == {"BYMONTH", "BYMONTHDAY"}:
            return {"type": "absoluteYearly", "dayOfMonth": _one_day_of_month(parts)}
        if "BYDAY" in by and by <= {"BYMONTH", "BYDAY", "BYSETPOS"}:
            return {"type": "relativeYearly", **_relative(parts)}
    raise Unrepresentable(f"DingTalk cannot express RRULE {render(parts)}", field="rrule")


def _plain_days(value: str) -> str:
    days = split_byday(value)
    if any(n for n, _ in days):
        raise Unrepresentable(f"DingTalk cannot express BYDAY={value} here", field="rrule")
    return ",".join(DAY_NAMES[WEEKDAYS.index(d)] for _, d in days)


def _one_day_of_month(parts: dict[str, str]) -> int:
    value = parts["BYMONTHDAY"]
    if "," in value or int(value) < 1:
        raise Unrepresentable(f"DingTalk cannot express BYMONTHDAY={value}", field="rrule")
    return int(value)


def _relative(parts: dict[str, str]) -> dict[str, Any]:
    days = split_byday(parts["BYDAY"])
    if "BYSETPOS" in parts:
        positions = parts["BYSETPOS"].split(",")
        if len(positions) != 1 or any(n for n, _ in days):
            raise Unrepresentable(f"DingTalk cannot express {render(parts)}", field="rrule")
        index = int(positions[0])
    else:
        ordinals = {n for n, _ in days}
        if len(days) != 1 or 0 in ordinals:
            raise Unrepresentable(f"DingTalk cannot express BYDAY={parts['BYDAY']}", field="rrule")
        index = ordinals.pop()
    if index not in _INDEX_NAME:
        raise Unrepresentable(f"DingTalk has no week index {index}", field="rrule")
    names = ",".join(DAY_NAMES[WEEKDAYS.index(d)] for _, d in days)
    return {"index": _INDEX_NAME[index], "daysOfWeek": names}


def _range(parts: dict[str, str]) -> dict[str, Any]:
    if "COUNT" in parts:
        return {"type": "numbered", "numberOfOccurrences": int(parts["COUNT"])}
    until = until_value(parts)
    if until is None:
        return {"type": "noEnd"}
    text = _time.utc_text(until) if isinstance(until, datetime) else until.isoformat()
    return {"type": "endDate", "endDate": text}


# --- DingTalk -> RRULE ------------------------------------------------------------------------


def dingtalk_to_rrule(recurrence: Mapping[str, Any], start: When) -> str:
    """The canonical RRULE for a DingTalk ``recurrence`` object."""
    pattern = recurrence.get("pattern") or {}
    if not isinstance(pattern, Mapping):
        raise BrokenCalendarData(f"bad recurrence pattern {pattern!r}", field="recurrence")
    kind = str(pattern.get("type") or "")
    parts: dict[str, str] = {}
    if kind == "daily":
        parts["FREQ"] = "DAILY"
    elif kind == "weekly":
        parts.update(FREQ="WEEKLY", BYDAY=_byday(pattern, start))
    elif kind == "absoluteMonthly":
        parts.update(FREQ="MONTHLY", BYMONTHDAY=str(pattern.get("dayOfMonth") or start.day))
    elif kind == "relativeMonthly":
        parts.update(FREQ="MONTHLY", **_relative_parts(pattern, start))
    elif kind == "absoluteYearly":
        day = str(pattern.get("dayOfMonth") or start.day)
        parts.update(FREQ="YEARLY", BYMONTH=str(pattern.get("month") or start.month))
        parts["BYMONTHDAY"] = day
    elif kind == "relativeYearly":
        parts.update(FREQ="YEARLY", BYMONTH=str(pattern.get("month") or start.month))
        parts.update(_relative_parts(pattern, start))
    else:
        raise Unrepresentable(f"unknown DingTalk recurrence type {kind!r}", field="recurrence")
    parts["INTERVAL"] = str(pattern.get("interval") or 1)
    if pattern.get("firstDayOfWeek"):
        parts["WKST"] = _weekday_code(str(pattern["firstDayOfWeek"]))
    parts.update(_range_parts(recurrence.get("range") or {}))
    return canonical_rrule(render(parts), start)


def _weekday_code(name: str) -> str:
    key = name.strip().lower()
    for full, code in zip(DAY_NAMES, WEEKDAYS, strict=True):
        if key in (full, full[:3], code.lower()):
            return code
    raise BrokenCalendarData(f"bad day name {name!r}", field="recurrence")


def _byday(pattern: Mapping[str, Any], start: When) -> str:
    names = [n for n in str(pattern.get("daysOfWeek") or "").split(",") if n.strip()]
    return ",".join(_weekday_code(n) for n in names) or WEEKDAYS[start.weekday()]


def _relative_parts(pattern: Mapping[str, Any], start: When) -> dict[str, str]:
    index = INDEX.get(str(pattern.get("index") or "first").lower())
    if index is None:
        raise BrokenCalendarData(f"bad recurrence index {pattern.get('index')!r}", field="index")
    days = _byday(pattern, start)
    if "," in days:
        return {"BYDAY": days, "BYSETPOS": str(index)}
    return {"BYDAY": f"{index}{days}"}


def _range_parts(rng: Mapping[str, Any]) -> dict[str, str]:
    kind = str(rng.get("type") or "noEnd")
    if kind == "numbered":
        return {"COUNT": str(int(rng.get("numberOfOccurrences") or 1))}
    if kind == "endDate" and rng.get("endDate"):
        text = str(rng["endDate"])
        if "T" not in text:
            return {"UNTIL": _time.parse_date(text).strftime("%Y%m%d")}
        return {"UNTIL": _time.utc_text(_time.parse_iso(text)).replace("-", "").replace(":", "")}
    return {}
