"""Expansion of DingTalk recurrence objects into occurrence start times (dateutil.rrule).

Occurrences are identified by their original start in UTC; an instance id is
``<masterId>_<yyyymmddThhmmssZ>`` of that start.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule

from syncd_lab.sandbox.times import day_start, iso_local, parse_date, parse_instant

_FREQ = {
    "daily": rrule.DAILY,
    "weekly": rrule.WEEKLY,
    "absoluteMonthly": rrule.MONTHLY,
    "relativeMonthly": rrule.MONTHLY,
    "absoluteYearly": rrule.YEARLY,
    "relativeYearly": rrule.YEARLY,
}
_DAYS = {
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
    "sunday": rrule.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
MAX_OCCURRENCES = 5000


def start_of(fields: dict[str, Any]) -> datetime:
    """The event's start on the UTC time line (all-day: midnight UTC of its date)."""
    start = fields["start"]
    if fields.get("isAllDay"):
        return day_start(parse_date(start["date"], "start.date"))
    return parse_instant(start["dateTime"], "start.dateTime").astimezone(UTC)


def duration_of(fields: dict[str, Any]) -> timedelta:
    """End minus start."""
    end = dict(fields, start=fields["end"])
    return start_of(end) - start_of(fields)


def _local_start(fields: dict[str, Any]) -> datetime:
    if fields.get("isAllDay"):
        return start_of(fields).replace(tzinfo=None)
    tz = ZoneInfo(fields["start"]["timeZone"])
    return parse_instant(fields["start"]["dateTime"], "start").astimezone(tz)


def _until(rng: dict[str, Any], dtstart: datetime) -> datetime | None:
    if rng.get("type") != "endDate":
        return None
    text = rng["endDate"]
    if len(text) == 10:  # a bare date: the whole day counts
        until = datetime.combine(parse_date(text, "endDate"), datetime.max.time())
        return until.replace(tzinfo=dtstart.tzinfo)
    moment = parse_instant(text, "recurrence.range.endDate")
    return moment.astimezone(dtstart.tzinfo) if dtstart.tzinfo else moment.replace(tzinfo=None)


def _weekday_rules(pattern: dict[str, Any], dtstart: datetime) -> dict[str, Any]:
    kind = pattern["type"]
    days = [_DAYS[d] for d in str(pattern.get("daysOfWeek", "")).split(",") if d in _DAYS]
    if kind == "weekly":
        return {"byweekday": days}
    if kind in {"relativeMonthly", "relativeYearly"}:
        nth = _INDEX.get(pattern.get("index", "first"), 1)
        rules: dict[str, Any] = {"byweekday": [d(nth) for d in days]}
        if kind == "relativeYearly":
            rules["bymonth"] = dtstart.month
        return rules
    day = pattern.get("dayOfMonth", dtstart.day)
    if kind == "absoluteMonthly":
        return {"bymonthday": day}
    if kind == "absoluteYearly":
        return {"bymonth": dtstart.month, "bymonthday": day}
    return {}


def rule_of(fields: dict[str, Any]) -> rrule.rrule:
    """The dateutil rule of a series master's fields (which must carry ``recurrence``)."""
    rec = fields["recurrence"]
    pattern, rng = rec["pattern"], rec.get("range", {"type": "noEnd"})
    dtstart = _local_start(fields)
    kwargs: dict[str, Any] = {"dtstart": dtstart, "interval": pattern.get("interval", 1)}
    kwargs.update(_weekday_rules(pattern, dtstart))
    if rng.get("type") == "numbered":
        kwargs["count"] = rng["numberOfOccurrences"]
    else:
        kwargs["until"] = _until(rng, dtstart)
    first = str(pattern.get("firstDayOfWeek", "")).lower()
    if first in _DAYS:
        kwargs["wkst"] = _DAYS[first]
    return rrule.rrule(_FREQ[pattern["type"]], **kwargs)  # type: ignore[arg-type]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def occurrences(fields: dict[str, Any]) -> Iterator[datetime]:
    """Occurrence starts in UTC, in order, at most :data:`MAX_OCCURRENCES`."""
    for number, moment in enumerate(rule_of(fields)):
        if number >= MAX_OCCURRENCES:
            return
        yield _utc(moment)


def occurrences_between(
    fields: dict[str, Any], low: datetime | None, high: datetime | None
) -> list[datetime]:
    """Occurrence starts ``low <= start < high`` (either bound optional)."""
    out = []
    for moment in occurrences(fields):
        if high is not None and moment >= high:
            break
        if low is None or moment >= low:
            out.append(moment)
    return out


def is_occurrence(fields: dict[str, Any], moment: datetime) -> bool:
    """Whether ``moment`` (UTC) is an original occurrence start of the series."""
    return moment in occurrences_between(fields, moment, moment + timedelta(seconds=1))


def last_occurrence(fields: dict[str, Any]) -> datetime | None:
    """Start of the final occurrence, or ``None`` for an open-ended series."""
    rng = fields["recurrence"].get("range", {})
    if rng.get("type") == "noEnd":
        return None
    last = None
    for moment in occurrences(fields):
        last = moment
    return last


def instance_times(fields: dict[str, Any], origin: datetime) -> tuple[dict[str, Any], ...]:
    """``start``/``end`` objects of the occurrence that originally starts at ``origin``."""
    length = duration_of(fields)
    if fields.get("isAllDay"):
        day = origin.date()
        return {"date": day.isoformat()}, {"date": (day + length).isoformat()}
    tz_name = fields["start"]["timeZone"]
    tz = ZoneInfo(tz_name)
    begin = origin.astimezone(tz)
    finish = (origin + length).astimezone(tz)
    return (
        {"dateTime": iso_local(begin), "timeZone": tz_name},
        {"dateTime": iso_local(finish), "timeZone": tz_name},
    )
