"""Validation and normalisation of event request bodies, as DingTalk would check them.

Pure functions: a request body in, the stored form of the writable fields out, or an
:class:`~syncd_lab.sandbox.errors.ApiError` with a 400 status and an ``invalidParameter.*`` code.
Unknown fields are ignored, like DingTalk does.
"""

from __future__ import annotations

from typing import Any

from syncd_lab.sandbox.errors import invalid
from syncd_lab.sandbox.times import iso_local, parse_date, parse_instant, zone

SUMMARY_MAX, DESCRIPTION_MAX = 2048, 5000
ATTENDEES_PER_CALL, ATTENDEES_PER_EVENT = 500, 5000
PATTERNS = {
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
}
RANGES = {"noEnd", "endDate", "numbered"}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEXES = {"first", "second", "third", "fourth", "last"}
RESPONSES = {"needsAction", "accepted", "declined", "tentative"}
# freeBusyStatus: "busy" (the default) or "free" — the vocabulary of DingTalk's own
# calendar tooling; the API's reference leaves the values open (docs/free-busy.md).
FREE_BUSY = {"busy", "free"}
_DICT_FIELDS = ("location", "onlineMeetingInfo", "richTextDescription", "eventConfig")
_LIST_FIELDS = ("categories", "uiConfigs", "cardInstances")


def _text(body: dict[str, Any], name: str, limit: int, out: dict[str, Any]) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be a string")
    if len(value) > limit:
        raise invalid(name, f"{name} is longer than {limit} characters")
    out[name] = value


def _shapes(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name in _DICT_FIELDS:
        if body.get(name) is not None:
            if not isinstance(body[name], dict):
                raise invalid(name, f"{name} must be an object")
            out[name] = dict(body[name])
    for name in _LIST_FIELDS:
        if body.get(name) is not None:
            if not isinstance(body[name], list):
                raise invalid(name, f"{name} must be an array")
            out[name] = list(body[name])
    _free_busy(body, out)
    if body.get("isAllDay") is not None:
        if not isinstance(body["isAllDay"], bool):
            raise invalid("isAllDay", "isAllDay must be a boolean")
        out["isAllDay"] = body["isAllDay"]


def _free_busy(body: dict[str, Any], out: dict[str, Any]) -> None:
    if body.get("freeBusyStatus") is not None:
        if body["freeBusyStatus"] not in FREE_BUSY:
            raise invalid("freeBusyStatus", f"freeBusyStatus must be one of {sorted(FREE_BUSY)}")
        out["freeBusyStatus"] = body["freeBusyStatus"]


def reminders(value: Any) -> list[dict[str, Any]]:
    """Request reminders ``[{method, minutes:int}]`` in stored form (minutes as int)."""
    if not isinstance(value, list):
        raise invalid("reminders", "reminders must be an array")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid("reminders", "each reminder must be an object")
        minutes = item.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | str):
            raise invalid("reminders", "reminders[].minutes must be an integer")
        try:
            number = int(minutes)
        except ValueError as exc:
            raise invalid("reminders", "reminders[].minutes must be an integer") from exc
        if number < 0:
            raise invalid("reminders", "reminders[].minutes must not be negative")
        out.append({"method": str(item.get("method") or "dingtalk"), "minutes": number})
    return out


def default_reminders(all_day: bool) -> list[dict[str, Any]]:
    """Server default: 15 minutes before; all-day events 09:00 the day before (900 min)."""
    return [{"method": "dingtalk", "minutes": 900 if all_day else 15}]


def _all_day_side(value: dict[str, Any], name: str) -> dict[str, Any]:
    if not value.get("date") or value.get("dateTime"):
        raise invalid(name, f"all-day events need {name}.date and no {name}.dateTime")
    return {"date": parse_date(value["date"], f"{name}.date").isoformat()}


def _timed_side(value: dict[str, Any], name: str, tz_name: Any) -> dict[str, Any]:
    if not value.get("dateTime"):
        what = "isAllDay is not true" if value.get("date") else "dateTime is missing"
        raise invalid(name, f"{name}: timed event needs dateTime ({what})")
    tz = zone(tz_name, f"{name}.timeZone")
    moment = parse_instant(value["dateTime"], f"{name}.dateTime", tz).astimezone(tz)
    return {"dateTime": iso_local(moment), "timeZone": tz_name}


def times(fields: dict[str, Any]) -> None:
    """Check and normalise ``start``/``end`` in place against ``isAllDay``."""
    start, end = fields.get("start"), fields.get("end")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, dict):
            raise invalid(name, f"{name} is required and must be an object")
    assert isinstance(start, dict) and isinstance(end, dict)  # noqa: PT018 - narrowing
    if fields.get("isAllDay"):
        fields["start"], fields["end"] = _all_day_side(start, "start"), _all_day_side(end, "end")
        if fields["end"]["date"] <= fields["start"]["date"]:
            raise invalid("end", "end.date must be after start.date (end is exclusive)")
        return
    tz_name = start.get("timeZone")
    if end.get("timeZone") != tz_name:
        raise invalid("end", "end.timeZone must equal start.timeZone")
    fields["start"] = _timed_side(start, "start", tz_name)
    fields["end"] = _timed_side(end, "end", tz_name)
    first = parse_instant(fields["start"]["dateTime"], "start")
    if parse_instant(fields["end"]["dateTime"], "end") <= first:
        raise invalid("end", "end must be after start")


def _days(raw: dict[str, Any], out: dict[str, Any]) -> None:
    if raw.get("daysOfWeek") is not None:
        days = [d.strip().lower() for d in str(raw["daysOfWeek"]).split(",") if d.strip()]
        if not days or any(d not in DAYS for d in days):
            raise invalid("recurrence", "recurrence.pattern.daysOfWeek: unknown day name")
        out["daysOfWeek"] = ",".join(days)
    elif raw["type"] in {"weekly", "relativeMonthly", "relativeYearly"}:
        raise invalid("recurrence", f"{raw['type']} recurrence needs daysOfWeek")


def _pattern(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in PATTERNS:
        raise invalid("recurrence", f"recurrence.pattern.type must be one of {sorted(PATTERNS)}")
    out: dict[str, Any] = {"type": raw["type"], "interval": raw.get("interval", 1)}
    if not isinstance(out["interval"], int) or out["interval"] < 1:
        raise invalid("recurrence", "recurrence.pattern.interval must be a positive integer")
    _days(raw, out)
    if raw.get("dayOfMonth") is not None:
        if not isinstance(raw["dayOfMonth"], int) or not 1 <= raw["dayOfMonth"] <= 31:
            raise invalid("recurrence", "recurrence.pattern.dayOfMonth must be 1..31")
        out["dayOfMonth"] = raw["dayOfMonth"]
    if raw.get("index") is not None:
        if raw["index"] not in INDEXES:
            raise invalid("recurrence", f"recurrence.pattern.index must be one of {INDEXES}")
        out["index"] = raw["index"]
    if raw.get("firstDayOfWeek") is not None:
        out["firstDayOfWeek"] = str(raw["firstDayOfWeek"])
    return out


def _range(raw: Any) -> dict[str, Any]:
    raw = raw if raw is not None else {"type": "noEnd"}
    if not isinstance(raw, dict) or raw.get("type") not in RANGES:
        raise invalid("recurrence", f"recurrence.range.type must be one of {sorted(RANGES)}")
    out: dict[str, Any] = {"type": raw["type"]}
    if raw["type"] == "endDate":
        if not isinstance(raw.get("endDate"), str):
            raise invalid("recurrence", "recurrence.range.endDate is required for type endDate")
        parse_instant(raw["endDate"], "recurrence.range.endDate")
        out["endDate"] = raw["endDate"]
    if raw["type"] == "numbered":
        count = raw.get("numberOfOccurrences")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise invalid("recurrence", "recurrence.range.numberOfOccurrences must be >= 1")
        out["numberOfOccurrences"] = count
    return out


def recurrence(raw: Any) -> dict[str, Any] | None:
    """Stored form of a ``recurrence`` object (known keys only), or ``None``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid("recurrence", "recurrence must be an object")
    return {"pattern": _pattern(raw.get("pattern")), "range": _range(raw.get("range"))}


def writable(body: dict[str, Any]) -> dict[str, Any]:
    """The writable event fields present in ``body``, checked and normalised (no times check)."""
    out: dict[str, Any] = {}
    _text(body, "summary", SUMMARY_MAX, out)
    _text(body, "description", DESCRIPTION_MAX, out)
    _shapes(body, out)
    for name in ("start", "end"):
        if body.get(name) is not None:
            if not isinstance(body[name], dict):
                raise invalid(name, f"{name} must be an object")
            out[name] = dict(body[name])
    if "recurrence" in body:
        out["recurrence"] = recurrence(body["recurrence"])
    if body.get("reminders") is not None:
        out["reminders"] = reminders(body["reminders"])
    return out


def create_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Stored fields of a CreateEvent body (summary, start and end required)."""
    fields = writable(body)
    if not fields.get("summary"):
        raise invalid("summary", "summary is required")
    fields.setdefault("isAllDay", False)
    times(fields)
    if "reminders" not in fields:
        fields["reminders"] = default_reminders(bool(fields["isAllDay"]))
    return fields


def patch_fields(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Current fields with a PatchEvent body applied (omitted fields are left alone)."""
    changes = writable(body)
    if "summary" in changes and not changes["summary"]:
        raise invalid("summary", "summary must not be empty")
    merged = {**current, **changes}
    times(merged)
    return merged
