"""Time helpers of the sandbox: lenient ISO-8601 parsing, DingTalk's output forms."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd_lab.sandbox.errors import BAD_TIME, ApiError, invalid


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def iso_utc_ms(ms: int) -> str:
    """``2025-09-20T02:00:00.123Z`` for epoch milliseconds (createTime/updateTime form)."""
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_utc(moment: datetime) -> str:
    """``2025-09-20T02:00:00Z`` (originStart form: always UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_utc(moment: datetime) -> str:
    """``20250920T020000Z``: the occurrence suffix of an instance id."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_compact_utc(text: str) -> datetime | None:
    """Inverse of :func:`compact_utc`; ``None`` when the text is not in that form."""
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_instant(text: str, field: str, zone: ZoneInfo | None = None) -> datetime:
    """An aware datetime from any RFC 3339 / ISO-8601 variant; naive text is in ``zone``/UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise ApiError(400, BAD_TIME, f"{field}: cannot parse {text!r} as ISO-8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return moment


def parse_date(text: str, field: str) -> date:
    """A ``yyyy-MM-dd`` date."""
    try:
        return date.fromisoformat(text)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, BAD_TIME, f"{field}: cannot parse {text!r} as yyyy-MM-dd") from exc


def zone(name: object, field: str) -> ZoneInfo:
    """The IANA zone ``name`` or a 400 error."""
    if not isinstance(name, str) or not name:
        raise invalid(field, f"{field} must be an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid(field, f"unknown time zone {name!r}") from exc


def day_start(day: date) -> datetime:
    """Midnight UTC of ``day`` (how all-day events are placed on the time line)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


ONE_YEAR = timedelta(days=366)


def iso_local(moment: datetime) -> str:
    """``2025-09-20T10:00:00+08:00`` (``Z`` for UTC), seconds precision."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
