"""What a DingTalk body cannot carry: warnings, and the event as DingTalk will keep it.

:func:`dingtalk_warnings` lists every loss of :func:`~.dingtalk.event_to_dingtalk` for an
event, one line each, for logs and status; :func:`as_dingtalk_keeps` applies them, so a
caller can predict the fingerprint DingTalk's copy will read back with.
"""

from __future__ import annotations

import dataclasses

from syncd.model import Event
from syncd.translate import _people
from syncd.translate.context import Context
from syncd.translate.dingtalk import (
    ATTENDEE_LIMIT,
    DESCRIPTION_LIMIT,
    MEETING_PREFIX,
    NO_TITLE,
    SUMMARY_LIMIT,
    _description,
    _end,
    _meeting,
    _summary,
    is_dingtalk_meeting,
)


def dingtalk_warnings(event: Event, ctx: Context) -> list[str]:
    """What :func:`event_to_dingtalk` cannot carry for this event, one line each."""
    notes: list[str] = []
    if event.recurrence_id is not None and event.recurrence is None:
        notes.append("an occurrence without its series is a single event in DingTalk")
    for item in (event, *event.overrides):
        notes += _lossy_text(item) + _lossy_people(item, ctx)
    return list(dict.fromkeys(notes))


def _lossy_text(event: Event) -> list[str]:
    notes = []
    if len(event.summary) > SUMMARY_LIMIT:
        notes.append(f"summary truncated to {SUMMARY_LIMIT} of {len(event.summary)} chars")
    if not event.summary:
        notes.append(f"DingTalk requires a title; an empty one is written as {NO_TITLE!r}")
    if len(_description_full(event)) > DESCRIPTION_LIMIT:
        notes.append(f"description truncated to {DESCRIPTION_LIMIT} chars")
    if _end(event) != event.end:
        notes.append("a zero-length event is one minute long in DingTalk")
    if event.privacy != "public":
        notes.append(f"DingTalk has no privacy; {event.privacy} becomes public")
    if event.status != "confirmed":
        notes.append(f"DingTalk bodies carry no status; {event.status} is written as confirmed")
    return notes


def _lossy_people(event: Event, ctx: Context) -> list[str]:
    notes = []
    found, missing = _people.attendees_to_dingtalk(event.attendees, ctx)
    if len(found) > ATTENDEE_LIMIT:
        notes.append(f"attendees cut to DingTalk's {ATTENDEE_LIMIT} of {len(found)}")
    if missing:
        notes.append(f"attendees not in the directory left out: {', '.join(sorted(missing))}")
    me = _people.user_email(ctx)
    if event.organizer and me and event.organizer != me:
        notes.append(f"organizer {event.organizer} becomes the bound user in DingTalk")
    return notes


def _description_full(event: Event) -> str:
    url = event.online_meeting_url
    if not url or is_dingtalk_meeting(url):
        return event.description
    return f"{event.description}\n\n{MEETING_PREFIX}{url}"


def as_dingtalk_keeps(event: Event, ctx: Context) -> Event:
    """The event as DingTalk will hold it after :func:`event_to_dingtalk` is written.

    Applies every documented loss: truncation, empty title, zero length, an occurrence
    without its series as a single event, privacy → public, status → confirmed,
    the bound user as organizer, attendees without a unionId left out, and free/busy
    read back as busy (DingTalk stores ``freeBusyStatus`` but does not return it, so a
    read never says "free"; the held mechanism then never takes that for an edit).
    """
    kept = _kept(event, ctx)
    if event.recurrence is None:
        return dataclasses.replace(kept, recurrence_id=None)
    return dataclasses.replace(kept, overrides=tuple(_kept(o, ctx) for o in event.overrides))


def _kept(event: Event, ctx: Context) -> Event:
    me = _people.user_email(ctx)
    description, url = _meeting({"description": _description(event)})
    url = event.online_meeting_url if is_dingtalk_meeting(event.online_meeting_url) else url
    organizer = me or event.organizer
    kept = [
        a for a in event.attendees if _people.union_id_for(a.email, ctx) not in (None, ctx.user)
    ]
    return dataclasses.replace(
        event,
        summary=_summary(event),
        end=_end(event),
        description=description,
        online_meeting_url=url,
        privacy="public",
        status="confirmed",
        free_busy="busy",
        organizer=organizer,
        attendees=_people.clean_people(organizer, kept),
    )
