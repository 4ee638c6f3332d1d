"""DingTalk event JSON ⇄ canonical :class:`~syncd.model.Event` (pure; no I/O).

Reading takes the response shape of GetEvent/ListEvents; writing produces a create/patch
request body. ``freeBusyStatus`` (``busy``/``free``) is always in the body; responses do
not carry it (official SDK), so it is read when present and taken as ``busy`` otherwise.
What DingTalk cannot hold is listed by ``dingtalk_warnings`` and applied by
``as_dingtalk_keeps`` (both in :mod:`._lossy`), so callers can log the loss and predict
the fingerprint of their own write.

A series' exceptions are not part of the master's body: :func:`exception_bodies` lists
them as ``(recurrence_id, body)`` pairs, ``body`` None meaning "cancel that occurrence".
The adapter finds the instance whose ``originStart`` equals the recurrence id (in UTC)
and patches (or cancels/deletes) it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from syncd.errors import BrokenCalendarData
from syncd.model import Event, Recurrence, When
from syncd.translate import _common, _people, _time
from syncd.translate._dtrecur import dingtalk_to_rrule, rrule_to_dingtalk
from syncd.translate.context import Context

log = structlog.get_logger(__name__)

SUMMARY_LIMIT = 2048
DESCRIPTION_LIMIT = 5000
MIN_LENGTH = timedelta(minutes=1)
NO_TITLE = "(no title)"
ATTENDEE_LIMIT = 5000  # per event; the adapter sends at most 500 per call (create, then add)
NO_NOTIFY = {"noPushNotification": "true", "noChatNotification": "true"}
MEETING_PREFIX = "Online meeting: "
_MEETING_TAIL = re.compile(r"(?:\A|\n\n)Online meeting: (\S+)\Z")


def uid_for_dingtalk_id(event_id: str) -> str:
    """The iCalendar UID of an event born in DingTalk; stable forever."""
    return f"dingtalk-{hashlib.sha1(event_id.encode()).hexdigest()[:32]}@syncd"  # noqa: S324


def is_dingtalk_meeting(url: str | None) -> bool:
    """True for DingTalk's own video-meeting links (they come from ``onlineMeetingInfo``)."""
    host = re.sub(r"^[a-z]+://", "", (url or "").lower()).split("/", 1)[0]
    return host == "dingtalk.com" or host.endswith(".dingtalk.com")


# --- reading ------------------------------------------------------------------------------


def event_from_dingtalk(
    master: Mapping[str, Any], instances: Sequence[Mapping[str, Any]], ctx: Context
) -> Event:
    """One DingTalk event (and its exception instances) as a canonical Event."""
    if not isinstance(master, Mapping) or not master.get("id"):
        raise BrokenCalendarData("DingTalk event without an id", field="id")
    event_id = str(master["id"])
    series_id = str(master.get("seriesMasterId") or "")
    uid = uid_for_dingtalk_id(series_id or event_id)
    event = _single(master, uid, ctx)
    if series_id and series_id != event_id:  # an instance whose master we do not have
        return dataclasses.replace(event, recurrence_id=_origin(master, event.start))
    if not isinstance(master.get("recurrence"), Mapping):
        return event
    rrule = dingtalk_to_rrule(master["recurrence"], event.start)
    event = dataclasses.replace(event, recurrence=Recurrence(rrule))
    exdates: list[When] = []
    overrides: list[Event] = []
    for item in instances:
        if str(item.get("seriesMasterId") or "") != event_id or item.get("id") == event_id:
            log.warning("dingtalk_instance_skipped", event_id=event_id, instance=item.get("id"))
            continue
        rid = _origin(item, event.start)
        if str(item.get("status") or "") == "cancelled":
            exdates.append(rid)
        else:
            overrides.append(dataclasses.replace(_single(item, uid, ctx), recurrence_id=rid))
    return _common.finish_series(event, exdates, overrides)


def _single(data: Mapping[str, Any], uid: str, ctx: Context) -> Event:
    all_day = bool(data.get("isAllDay")) or bool((data.get("start") or {}).get("date"))
    start = _time.from_dingtalk(data.get("start"), all_day, ctx.timezone)
    end_raw = data.get("end")
    end = _time.from_dingtalk(end_raw, all_day, ctx.timezone) if end_raw else None
    organizer = _organizer(data, ctx)
    description, url = _meeting(data)
    location = _location(data)
    return Event(
        uid=uid,
        summary=_common.clean_text(data.get("summary")),
        start=start,
        end=_time.fix_end(start, end),
        description=description,
        location=location,
        status="cancelled" if data.get("status") == "cancelled" else "confirmed",
        free_busy="free" if data.get("freeBusyStatus") == "free" else "busy",
        organizer=organizer,
        attendees=_people.attendees_from_dingtalk(data.get("attendees") or (), organizer, ctx),
        reminders=_common.reminders(_minutes(data.get("reminders") or ())),
        online_meeting_url=url,
        updated=_time.parse_iso(str(data["updateTime"])) if data.get("updateTime") else None,
    )


def _location(data: Mapping[str, Any]) -> str:
    """location.displayName, with booked rooms' names appended when not already in it."""
    place = data.get("location")
    text = _common.clean_text(place.get("displayName")) if isinstance(place, Mapping) else ""
    rooms = [r for r in data.get("meetingRooms") or () if isinstance(r, Mapping)]
    names = [_common.clean_text(r.get("displayName")) for r in rooms]
    extra = [n for n in names if n and n not in text]
    return "; ".join([text, *extra] if text else extra)


def _organizer(data: Mapping[str, Any], ctx: Context) -> str | None:
    organizer = data.get("organizer")
    if isinstance(organizer, Mapping) and organizer.get("id"):
        return _people.email_for(str(organizer["id"]), ctx)
    return None


def _meeting(data: Mapping[str, Any]) -> tuple[str, str | None]:
    description = _common.clean_text(data.get("description"))
    info = data.get("onlineMeetingInfo")
    if isinstance(info, Mapping) and info.get("url"):
        return description, str(info["url"])
    match = _MEETING_TAIL.search(description)
    if match is None:
        return description, None
    return description[: match.start()], match.group(1)


def _minutes(items: Sequence[Any]) -> list[int]:
    out = []
    for item in items:
        try:
            out.append(int(str(item.get("minutes")).strip()))
        except (AttributeError, ValueError):
            log.warning("dingtalk_reminder_skipped", reminder=item)
    return out


def _origin(item: Mapping[str, Any], series_start: When) -> When:
    origin = item.get("originStart")
    if not isinstance(origin, Mapping) or not (origin.get("dateTime") or origin.get("date")):
        raise BrokenCalendarData(
            f"instance {item.get('id')} has no originStart", field="originStart"
        )
    if origin.get("date"):
        return _time.like(_time.parse_date(str(origin["date"])), series_start)
    instant = _time.parse_iso(str(origin["dateTime"]))
    if isinstance(series_start, datetime):
        return instant.astimezone(series_start.tzinfo)
    # All-day: the nearest midnight, whichever zone DingTalk placed the day in (|offset| < 12 h).
    return (instant.astimezone(_time.UTC) + timedelta(hours=12)).date()


# --- writing ------------------------------------------------------------------------------


def event_to_dingtalk(event: Event, ctx: Context) -> dict[str, Any]:
    """A create/patch request body (no ``id``); the series' exceptions are not included."""
    body: dict[str, Any] = {
        "summary": _summary(event),
        "description": _description(event),
        "start": _time.to_dingtalk(event.start, event.start),
        "end": _time.to_dingtalk(_end(event), event.start),
        "isAllDay": event.all_day,
        "location": {"displayName": event.location},
        "attendees": _people.attendees_to_dingtalk(event.attendees, ctx)[0][:ATTENDEE_LIMIT],
        "reminders": [{"method": "dingtalk", "minutes": m} for m in event.reminders],
        "freeBusyStatus": event.free_busy,
        "extra": dict(NO_NOTIFY),
    }
    if event.recurrence is not None:
        body["recurrence"] = rrule_to_dingtalk(event.recurrence.rrule, event.start)
    return body


def _summary(event: Event) -> str:
    """DingTalk requires a title: an empty one is written as NO_TITLE."""
    return event.summary[:SUMMARY_LIMIT] or NO_TITLE


def _end(event: Event) -> When:
    """DingTalk needs end after start: a zero-length timed event gets one minute."""
    if isinstance(event.start, datetime) and event.end <= event.start:
        return event.start + MIN_LENGTH
    return event.end


def _description(event: Event) -> str:
    url = event.online_meeting_url
    if not url or is_dingtalk_meeting(url):
        return event.description[:DESCRIPTION_LIMIT]
    tail = f"{MEETING_PREFIX}{url}"
    room = DESCRIPTION_LIMIT - len(tail) - 2
    head = event.description[: max(0, room)]
    return f"{head}\n\n{tail}" if head else tail


def exception_bodies(event: Event, ctx: Context) -> list[tuple[When, dict[str, Any] | None]]:
    """The series' exceptions as ``(recurrence_id, body or None for cancelled)``, in order."""
    if event.recurrence is None:
        return []
    out: list[tuple[When, dict[str, Any] | None]] = [(d, None) for d in event.recurrence.exdates]
    for item in event.overrides:
        assert item.recurrence_id is not None
        out.append(
            (item.recurrence_id, event_to_dingtalk(dataclasses.replace(item, recurrence=None), ctx))
        )
    return sorted(out, key=lambda pair: _time.utc_sort_key(pair[0]))
