"""iCalendar calendar object resource ⇄ canonical :class:`~syncd.model.Event` (pure).

Reading ignores what servers rewrite (DTSTAMP, PRODID, SEQUENCE, LAST-MODIFIED, CREATED,
VTIMEZONE bodies, property order, line folding). Writing produces a full VCALENDAR with a
VTIMEZONE for every zone used, SEQUENCE 0 and ``SCHEDULE-AGENT=CLIENT`` on the organizer
and every attendee, so servers never send invitations for mirrored copies. That full
rendering is for new objects; an update of a stored object goes through
:func:`syncd.translate.icalpatch.patch_ical`, which keeps what syncd does not map.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from datetime import UTC, datetime

import structlog
from icalendar import Calendar, Component, Timezone, vCalAddress, vRecur, vUri
from icalendar import Event as VEvent

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import Event, Recurrence
from syncd.translate import _common, limits
from syncd.translate import _icalread as read
from syncd.translate import _icaltime as times
from syncd.translate._lines import Block, block_of
from syncd.translate._patchprops import display_alarm
from syncd.translate._vtimezone import CalendarZones
from syncd.translate.context import Context

log = structlog.get_logger(__name__)

PRODID = "-//syncd//EN"


def parse_calendar(text: str) -> Calendar:
    """Parse iCalendar text; BrokenCalendarData (with the parser's reason) if impossible.

    Text over :mod:`.limits` is refused first (Unrepresentable), before any parsing.
    """
    limits.check_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cal = Calendar.from_ical(text)
        except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError, ...
            raise BrokenCalendarData(f"unparseable iCalendar: {exc}") from exc
    for item in caught:
        log.info("icalendar_warning", message=str(item.message)[:200])
    if not isinstance(cal, Calendar):
        raise BrokenCalendarData("not a VCALENDAR")
    return cal


def event_from_ical(text: str, ctx: Context) -> Event:
    """One calendar object resource (a master with overrides, or an orphan override)."""
    return event_from_calendar(parse_calendar(text), ctx)


def event_from_calendar(cal: Calendar, ctx: Context) -> Event:
    """One calendar object resource already parsed (or built by :func:`calendar_for`)."""
    vevents = [c for c in cal.walk("VEVENT")]
    if not vevents:
        other = read.names(cal.subcomponents) - {"VTIMEZONE"}
        if other:
            raise Unrepresentable(f"no VEVENT, only {', '.join(sorted(other))}", field="component")
        raise BrokenCalendarData("no VEVENT in the calendar", field="component")
    if len({str(v.get("UID", "")) for v in vevents}) > 1:
        raise BrokenCalendarData("several UIDs in one calendar object resource", field="uid")
    try:
        return _build(vevents, ctx, CalendarZones.of(cal))
    except (BrokenCalendarData, Unrepresentable):
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise BrokenCalendarData(f"bad VEVENT: {exc}") from exc


def _build(vevents: list[Component], ctx: Context, zones: CalendarZones) -> Event:
    masters = [v for v in vevents if v.get("RECURRENCE-ID") is None]
    others = [v for v in vevents if v.get("RECURRENCE-ID") is not None]
    if len(masters) > 1:
        masters = [read.newest(masters)]
    if not masters:
        if len(others) > 1:
            raise Unrepresentable("several overrides without their master", field="recurrence-id")
        return single(others[0], ctx, zones)
    master = single(masters[0], ctx, zones)
    rule = times.rrule(masters[0], master.start)
    if rule is None:
        if others:
            log.warning("overrides_without_rrule", uid=master.uid, count=len(others))
        return master
    master = dataclasses.replace(master, recurrence=Recurrence(rule))
    overrides = [single(v, ctx, zones) for v in others]
    own = [o.recurrence_id for o, raw in zip(overrides, others, strict=True) if raw.get("RRULE")]
    if any(_common.real_moments(master, own)):
        raise Unrepresentable("an override with its own RRULE (this-and-future)", field="rrule")
    return _common.finish_series(master, times.exdates(masters[0], ctx, zones), overrides)


def single(ev: Component, ctx: Context, zones: CalendarZones) -> Event:
    """One VEVENT on its own (no rule): the fields a master or an override carries.

    ``zones`` resolves TZIDs within the VEVENT's calendar (``CalendarZones.of(cal)``).
    """
    start, end = times.times(ev, ctx, zones)
    org = read.organizer(ev)
    rid = ev.get("RECURRENCE-ID")
    return Event(
        uid=str(ev.get("UID", "")),
        summary=_common.clean_text(ev.get("SUMMARY")),
        start=start,
        end=end,
        description=_common.clean_text(ev.get("DESCRIPTION")),
        location=_common.clean_text(ev.get("LOCATION")),
        status=read.status(ev),
        privacy=read.privacy(ev),
        free_busy=read.free_busy(ev),
        organizer=org,
        attendees=read.attendees(ev, org),
        reminders=read.reminders(ev, start, end, ctx),
        online_meeting_url=read.meeting_url(ev),
        recurrence_id=times.when(rid, ctx, "RECURRENCE-ID", zones) if rid is not None else None,
        updated=read.updated(ev, ctx),
    )


# --- writing ------------------------------------------------------------------------------


def event_to_ical(event: Event, ctx: Context) -> str:
    """A full VCALENDAR for the event, its overrides and the VTIMEZONEs they use."""
    return ical_text(calendar_for(event))


def calendar_for(event: Event) -> Calendar:
    """The VCALENDAR :func:`event_to_ical` renders, as a component (not yet text).

    ``event_from_calendar`` of it is what ``event_from_ical`` of its text gives (the
    corpus test ``test_translate_written.py`` checks this for every corpus item), so a
    writer knows what it wrote without parsing its own text back.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add_component(_vevent(event))
    for item in event.overrides:
        cal.add_component(_vevent(dataclasses.replace(item, uid=event.uid)))
    zones = [z for z in map(_vtimezone, sorted(cal.get_missing_tzids())) if z is not None]
    cal.subcomponents[:0] = zones
    return cal


def event_from_written(cal: Calendar, text: str, ctx: Context) -> Event:
    """``event_from_ical(text, ctx)`` for ``text = ical_text(cal)``, without parsing ``text``.

    The same limits apply (Unrepresentable over them), then the component is read.
    """
    limits.check_text(text)
    return event_from_calendar(cal, ctx)


def ical_text(cal: Calendar) -> str:
    """The iCalendar text of a calendar (serialising never modifies it)."""
    text: bytes = cal.to_ical()
    return text.decode()


@functools.lru_cache(maxsize=256)
def _vtimezone(tzid: str) -> Timezone | None:
    """The VTIMEZONE of an IANA zone, built once per process (about 17 ms each).

    Shared read-only between calendars: serialising never modifies it.
    """
    try:
        return Timezone.from_tzid(tzid)
    except ValueError:
        return None


def vevent_block(event: Event, uid: str) -> Block:
    """A new VEVENT block (for :mod:`.icalpatch`) rendering ``event`` under ``uid``."""
    return block_of(_vevent(dataclasses.replace(event, uid=uid)))


def vtimezone_block(tzid: str) -> Block | None:
    """A new VTIMEZONE block for an IANA zone, None when the zone is unknown."""
    zone = _vtimezone(tzid)
    return block_of(zone) if zone is not None else None


def _vevent(event: Event) -> VEvent:
    ev = VEvent()
    ev.add("uid", event.uid)
    stamp = event.updated or datetime.now(UTC).replace(microsecond=0)
    ev.add("dtstamp", stamp.astimezone(UTC))
    ev.add("sequence", 0)
    ev.add("dtstart", event.start)
    ev.add("dtend", event.end)
    if event.recurrence_id is not None:
        ev.add("recurrence-id", event.recurrence_id)
    for name, value in (("summary", event.summary), ("description", event.description)):
        if value:
            ev.add(name, value)
    if event.location:
        ev.add("location", event.location)
    ev.add("status", event.status.upper())
    ev.add("class", event.privacy.upper())
    if event.free_busy == "free":
        ev.add("transp", "TRANSPARENT")
    _people(ev, event)
    _meeting(ev, event.online_meeting_url)
    if event.recurrence is not None:
        ev.add("rrule", vRecur.from_ical(event.recurrence.rrule))
        if event.recurrence.exdates:
            ev.add("exdate", list(event.recurrence.exdates))
    if event.updated is not None:
        ev.add("last-modified", event.updated.astimezone(UTC))
    for minutes in event.reminders:
        ev.add_component(display_alarm(minutes))
    return ev


def _meeting(ev: VEvent, url: str | None) -> None:
    if url:
        ev.add("url", vUri(url))
        ev.add("conference", vUri(url), parameters={"VALUE": "URI", "FEATURE": "VIDEO"})


def _people(ev: VEvent, event: Event) -> None:
    if event.organizer:
        org = vCalAddress(f"mailto:{event.organizer}")
        org.params["SCHEDULE-AGENT"] = "CLIENT"
        ev.add("organizer", org)
    for person in event.attendees:
        address = vCalAddress(f"mailto:{person.email}")
        if person.name:
            address.params["CN"] = person.name
        address.params["PARTSTAT"] = person.partstat.upper()
        address.params["ROLE"] = "OPT-PARTICIPANT" if person.optional else "REQ-PARTICIPANT"
        address.params["SCHEDULE-AGENT"] = "CLIENT"
        ev.add("attendee", address)
