"""Non-destructive update of a stored calendar object resource (pure).

``patch_ical(stored, event, ctx)`` returns ``stored`` with only the properties of the mapped
fields whose value differs from ``event`` rewritten, inside the object as stored: master
and every override. Everything else (unknown and ``X-`` properties, their parameters,
``CATEGORIES``, ``ATTACH``, ``COLOR``, ``GEO``, alarms syncd does not map, ``VLOCATION``
and ``X-`` components, sibling ``VTODO``\\ s, VTIMEZONEs still used) stays byte for byte.

- A field whose value is unchanged keeps its lines exactly (parameters included).
- Attendees are matched by e-mail; a changed one gets new CN/PARTSTAT/ROLE and
  ``SCHEDULE-AGENT=CLIENT``, its other parameters kept. VALARMs are matched by their
  trigger in minutes before the start.
- Overrides are matched by RECURRENCE-ID: edited in place, added, or removed (an
  occurrence the target cancels becomes an EXDATE; a stored override the target does not
  have is edited to say what the rule says, so its unmapped lines survive).
- VTIMEZONEs are added for newly used zones; only those no longer referenced are dropped.
- SEQUENCE is never touched; DTSTAMP/LAST-MODIFIED follow ``event.updated`` on the
  components that changed.

The result is checked: it must read back with the fingerprint ``event_to_ical(event)``
reads back with. If the stored text cannot be read, or the check fails, the full
rendering is returned instead and the reason logged (``ical_patch_fallback``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import structlog
from icalendar import Component

from syncd.errors import BrokenCalendarData, TranslationError
from syncd.model import Event, encode_when, to_jsonable
from syncd.translate import _common, _expand, _time, ical
from syncd.translate import _icalread as read
from syncd.translate import _icaltime as times
from syncd.translate import _lines as lines
from syncd.translate import _patchprops as props
from syncd.translate._lines import Block
from syncd.translate._vtimezone import CalendarZones
from syncd.translate.context import Context

log = structlog.get_logger(__name__)

SINGLE_FIELDS = (
    "summary", "description", "location", "start", "end", "status", "privacy", "free_busy",
    "organizer", "attendees", "reminders", "online_meeting_url",
)  # fmt: skip
_ENUMS: dict[str, tuple[str, Callable[[Event], str]]] = {
    "status": ("STATUS", lambda e: e.status.upper()),
    "privacy": ("CLASS", lambda e: e.privacy.upper()),
    "free_busy": ("TRANSP", lambda e: "TRANSPARENT" if e.free_busy == "free" else "OPAQUE"),
}
Pair = tuple[Block, Component]


def patch_ical(stored: str, event: Event, ctx: Context) -> str:
    """``stored`` changed to hold ``event``, touching only what differs (module docstring)."""
    expected = ical.event_to_ical(event, ctx)
    try:
        patched = _patch(stored, event, ctx)
        got = ical.event_from_ical(patched, ctx)
    except (TranslationError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("ical_patch_fallback", uid=event.uid, reason=f"{type(exc).__name__}: {exc}")
        return expected
    want = ical.event_from_ical(expected, ctx)
    if got.fingerprint() != want.fingerprint():
        diff = sorted(k for k, v in _view(got).items() if _view(want)[k] != v)
        log.error("ical_patch_fallback", uid=event.uid, reason="mismatch", fields=diff)
        return expected
    return patched


def _patch(stored: str, event: Event, ctx: Context) -> str:
    top = lines.parse(stored)
    ical.event_from_ical(stored, ctx)  # the stored object must read (else: full rendering)
    cal = ical.parse_calendar(stored)
    zones = CalendarZones.of(cal)
    comps = [c for c in cal.subcomponents if c.name == "VEVENT"]
    pairs = list(zip(top.blocks("VEVENT"), comps, strict=True))
    before = _tzids(top)
    masters = [p for p in pairs if p[1].get("RECURRENCE-ID") is None]
    if not masters:
        if event.recurrence is not None or len(pairs) != 1:
            raise BrokenCalendarData("an orphan override cannot become a series in place")
        _patch_one(pairs[0], event, ctx, zones)
    else:
        newest = read.newest([c for _, c in masters]) if len(masters) > 1 else masters[0][1]
        master = next(p for p in masters if p[1] is newest)
        others = [p for p in pairs if p[1].get("RECURRENCE-ID") is not None]
        _patch_series(top, master, others, event, ctx, zones)
    _fix_timezones(top, before)
    return lines.render(top)


def _view(event: Event) -> dict[str, Any]:
    bare = dataclasses.replace(event, recurrence=None, overrides=(), recurrence_id=None)
    return to_jsonable(bare, hashed_only=True)


def _patch_one(pair: Pair, target: Event, ctx: Context, zones: CalendarZones) -> None:
    """Rewrite the changed single-event fields of one VEVENT."""
    block, comp = pair
    current = ical.single(comp, ctx, zones)
    now, want = _view(current), _view(target)
    changed = [name for name in SINGLE_FIELDS if now[name] != want[name]]
    for name in changed:
        _set_field(block, comp, name, current, target, ctx)
    if changed:
        props.set_stamp(block, target)


def _set_field(
    block: Block, comp: Component, name: str, current: Event, target: Event, ctx: Context
) -> None:
    if name in props.TEXT_PROPS:
        props.set_text(block, name, getattr(target, name))
    elif name in ("start", "end"):
        props.set_times(block, current, target)
    elif name in _ENUMS:
        prop, value = _ENUMS[name]
        props.set_enum(block, prop, value(target))
    elif name == "organizer":
        props.set_organizer(block, target.organizer)
    elif name == "attendees":
        props.set_attendees(block, target)
    elif name == "reminders":
        alarms = [c for c in comp.subcomponents if c.name == "VALARM"]
        minutes = [read.alarm_minutes(a, current.start, current.end, ctx) for a in alarms]
        props.set_alarms(block, minutes, target)
    else:
        props.set_meeting(block, current.online_meeting_url, target.online_meeting_url)


def _patch_series(
    top: Block, master: Pair, others: list[Pair], event: Event, ctx: Context, zones: CalendarZones
) -> None:
    """The master's fields and rule, then every override by RECURRENCE-ID."""
    bare = dataclasses.replace(event, overrides=(), recurrence=None, recurrence_id=None)
    _patch_one(master, bare, ctx, zones)
    block, comp = master
    current_start = ical.single(comp, ctx, zones).start
    rule = times.rrule(comp, current_start)
    wanted = event.recurrence.rrule if event.recurrence else None
    if rule != wanted:
        props.set_rrule(block, wanted)
    if event.recurrence is None:
        if rule is not None:
            for other, _ in others:
                top.remove(other)
        return
    kept_cancelled = _patch_overrides(top, others, event, ctx, zones)
    _patch_exdates(master, event, kept_cancelled, ctx, zones)


def _patch_overrides(
    top: Block, others: list[Pair], event: Event, ctx: Context, zones: CalendarZones
) -> set[str]:
    """Edit, add or remove override VEVENTs; returns the keys of cancelled ones kept."""
    assert event.recurrence is not None
    ref = event.start
    targets = {encode_when(o.recurrence_id): o for o in event.overrides if o.recurrence_id}
    exdates = {encode_when(_time.like(d, ref)) for d in event.recurrence.exdates}
    master = dataclasses.replace(event, overrides=())
    done: set[str] = set()
    kept_cancelled: set[str] = set()
    rids = [
        _time.like(times.when(c["RECURRENCE-ID"], ctx, "RECURRENCE-ID", zones), ref)
        for _, c in others
    ]
    real = _expand.real(event.recurrence.rrule, event.start, rids)
    for (block, comp), rid, is_real in zip(others, rids, real, strict=True):
        key = encode_when(rid)
        if key in targets:
            _patch_one((block, comp), dataclasses.replace(targets[key], uid=event.uid), ctx, zones)
            done.add(key)
        elif key in exdates and read.status(comp) == "cancelled":
            kept_cancelled.add(key)
        elif key not in exdates and is_real:
            _patch_one((block, comp), _common.occurrence_of(master, rid), ctx, zones)
        else:
            top.remove(block)  # cancelled by the target, or no occurrence any more
    added = [ical.vevent_block(o, event.uid) for k, o in targets.items() if k not in done]
    last = max(
        i for i, item in enumerate(top.items) if isinstance(item, Block) and item.name == "VEVENT"
    )
    top.items[last + 1 : last + 1] = added
    return kept_cancelled


def _patch_exdates(
    master: Pair, event: Event, kept_cancelled: set[str], ctx: Context, zones: CalendarZones
) -> None:
    """EXDATE lines: kept while every date in them is still wanted; the rest added."""
    assert event.recurrence is not None
    block, comp = master
    ref = event.start
    wanted = {encode_when(d): d for d in event.recurrence.exdates}
    needed = {k: d for k, d in wanted.items() if k not in kept_cancelled}
    keep: dict[int, bool] = {}
    covered: set[str] = set()
    props_moments = [
        [_time.like(times.when(v, ctx, "EXDATE", zones), ref) for v in getattr(prop, "dts", ())]
        for prop in read.as_list(comp.get("EXDATE"))
    ]
    every = [m for moments in props_moments for m in moments]
    real = dict(
        zip(map(encode_when, every), _expand.real(event.recurrence.rrule, ref, every), strict=True)
    )
    for index, moments in enumerate(props_moments):
        keys = {encode_when(m) for m in moments}
        harmless = {encode_when(m) for m in moments if not real[encode_when(m)]}
        keep[index] = keys <= set(needed) | harmless
        if keep[index]:
            covered |= keys
    if all(keep.values()) and set(needed) <= covered:
        return
    props.set_exdates(block, keep, [needed[k] for k in sorted(needed) if k not in covered])


def _tzids(top: Block) -> set[str]:
    found: set[str] = set()
    for block in top.blocks():
        if block.name == "VTIMEZONE":
            continue
        for sub in block.walk():
            for line in sub.lines():
                found |= line.tzids()
    return found


def _fix_timezones(top: Block, before: set[str]) -> None:
    """Add VTIMEZONEs for zones newly referenced; drop those referenced before and not now.

    A zone that was referenced before without a VTIMEZONE (servers accept IANA names) is
    left that way.
    """
    after = _tzids(top)
    present: set[str] = set()
    for zone in top.blocks("VTIMEZONE"):
        tzid = next((line.parts()[2] for line in zone.lines("TZID")), "")
        if tzid in before - after:
            top.remove(zone)
        else:
            present.add(tzid)
    new = [ical.vtimezone_block(tzid) for tzid in sorted(after - before - present)]
    first = next((i for i, item in enumerate(top.items) if isinstance(item, Block)), len(top.items))
    top.items[first:first] = [b for b in new if b is not None]
