"""An iCalendar feed (one VCALENDAR holding many events) split into items (pure).

A feed is read in two steps. :func:`check_feed` refuses what is not a whole calendar,
with a one-line reason: an empty body, an HTML page served with 200, a body cut short
(no final ``END:VCALENDAR``, or components left open). :func:`split_feed` then groups the
VEVENTs by UID (a master and its ``RECURRENCE-ID`` overrides are one item) and gives each
group the VTIMEZONEs it refers to, as its own small VCALENDAR text: exactly what a CalDAV
server would hold for that event, so :func:`~syncd.translate.event_from_ical` translates
it with the same rules (series, EXDATE, moved occurrences, all-day, zones) and the same
per-item limits. An item that cannot be translated is reported with its reason and the
others carry on. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from syncd.errors import BrokenCalendarData, SyncdError, TranslationError
from syncd.model import Event
from syncd.translate import _lines
from syncd.translate.context import Context
from syncd.translate.ical import event_from_ical

VOLATILE = frozenset({"DTSTAMP", "LAST-MODIFIED", "CREATED", "SEQUENCE", "PRODID"})
MAX_FEED_ITEMS = 50_000
"""UIDs one feed may hold; a bigger feed is refused (a 10 MB body holds ~30,000 events)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One UID of a feed: its text as a calendar object, and its translation or the reason
    it has none (``event`` None, ``error`` set)."""

    uid: str
    text: str
    event: Event | None
    error: str | None = None


def check_feed(text: str) -> None:
    """Raise ``BrokenCalendarData`` (one-line reason) unless ``text`` is a whole VCALENDAR."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body.strip():
        raise BrokenCalendarData("the feed is empty")
    head = body[:15].upper()
    if not head.startswith("BEGIN:VCALENDAR"):
        if head.startswith(("<!DOCTYPE", "<HTML", "<?XML", "<")):
            raise BrokenCalendarData("the feed is an HTML/XML page, not iCalendar")
        raise BrokenCalendarData(f"the feed does not start with BEGIN:VCALENDAR: {body[:40]!r}")
    if not body.rstrip().upper().endswith("END:VCALENDAR"):
        raise BrokenCalendarData("the feed is truncated: it does not end with END:VCALENDAR")


def split_feed(text: str, ctx: Context) -> list[FeedItem]:
    """The feed's items, one per UID, in the feed's order (``check_feed`` first)."""
    check_feed(text)
    try:
        top = _lines.parse(text.lstrip("\ufeff \t\r\n"))
    except BrokenCalendarData as exc:
        raise BrokenCalendarData(f"the feed is not one complete VCALENDAR: {exc}") from exc
    zones = {_tzid(z): z for z in top.blocks("VTIMEZONE")}
    groups: dict[str, list[_lines.Block]] = {}
    for vevent in top.blocks("VEVENT"):
        groups.setdefault(_uid(vevent), []).append(vevent)
    if len(groups) > MAX_FEED_ITEMS:
        raise BrokenCalendarData(
            f"the feed holds {len(groups):,} events (limit {MAX_FEED_ITEMS:,})"
        )
    return [_item(uid, blocks, zones, ctx) for uid, blocks in groups.items()]


def _item(
    uid: str, vevents: list[_lines.Block], zones: dict[str, _lines.Block], ctx: Context
) -> FeedItem:
    used = sorted(
        {tz for v in vevents for b in v.walk() for line in b.lines() for tz in line.tzids()}
    )
    cal = _lines.Block("VCALENDAR", _lines.Line("BEGIN:VCALENDAR"), _lines.Line("END:VCALENDAR"))
    cal.items = [_lines.Line("VERSION:2.0"), _lines.Line("PRODID:-//syncd//feed//EN")]
    cal.items += [zones[tz] for tz in used if tz in zones]
    cal.items += vevents
    text = _lines.render(cal)
    try:
        event = event_from_ical(text, ctx)
        if not event.uid:
            event = dataclasses.replace(
                event,
                uid=uid,
                overrides=tuple(dataclasses.replace(o, uid=uid) for o in event.overrides),
            )
        return FeedItem(uid, text, event)
    except TranslationError as exc:
        return FeedItem(uid, text, None, f"{type(exc).__name__}: {exc}")
    except (SyncdError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return FeedItem(uid, text, None, f"internal error translating the item: {exc!r}")


def _uid(vevent: _lines.Block) -> str:
    """The VEVENT's UID; one made from its text when it has none (stable while unchanged)."""
    for line in vevent.lines("UID"):
        value = line.text.split(":", 1)[-1].strip()
        if value:
            return value
    kept = [
        b.begin.text + "".join(f"\n{line.text}" for line in b.lines() if not volatile(line.name))
        for b in vevent.walk()
    ]
    digest = hashlib.sha256("\n".join(kept).encode()).hexdigest()[:32]
    return f"ics-nouid-{digest}@syncd"


def volatile(name: str) -> bool:
    """Whether a property is bookkeeping a feed may rewrite on every fetch (DTSTAMP,
    LAST-MODIFIED, CREATED, SEQUENCE, and every ``X-`` property, "exported at" stamps)."""
    return name in VOLATILE or name.startswith("X-")


def _tzid(zone: _lines.Block) -> str:
    for line in zone.lines("TZID"):
        return line.text.split(":", 1)[-1].strip()
    return ""
