"""Rewriting the properties of one mapped field inside one stored VEVENT (helpers of
:mod:`.icalpatch`).

Each ``set_*`` function changes only the lines that carry its field, in place, keeping
their parameters where the field does not own them; everything else in the block is
left as it was. Callers only call a setter for a field whose value differs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from icalendar import Alarm, vCalAddress, vRecur, vText, vUri
from icalendar import Event as VEvent

from syncd.model import Attendee, Event, When, encode_when
from syncd.translate import _common, _people
from syncd.translate._lines import Block, Line, block_of, lines_of, with_params, with_value
from syncd.translate._time import UTC

PARTSTAT = {"needs-action": "NEEDS-ACTION", "accepted": "ACCEPTED", "declined": "DECLINED",
            "tentative": "TENTATIVE"}  # fmt: skip
_READ_PARTSTAT = {v: k for k, v in PARTSTAT.items() if k != "needs-action"}
_OPTIONAL_ROLES = {"OPT-PARTICIPANT", "NON-PARTICIPANT"}
TEXT_PROPS = {"summary": "SUMMARY", "description": "DESCRIPTION", "location": "LOCATION"}


def prop_line(name: str, value: Any, params: dict[str, str] | None = None) -> Line:
    """A new content line for one property, rendered by icalendar."""
    holder = VEvent()
    holder.add(name, value, parameters=params or {})
    [line] = lines_of(holder)
    return line


def _replace(block: Block, old: Line, new: Line) -> None:
    block.items = [new if item is old else item for item in block.items]


def set_single(block: Block, name: str, new: Line | None) -> None:
    """Make ``name`` occur once as ``new`` (in the first one's place), or not at all."""
    found = block.lines(name)
    for extra in found[1:] if new is not None else found:
        block.remove(extra)
    if new is None:
        return
    if found:
        _replace(block, found[0], new)
    else:
        block.insert_after_props([new])


def set_text(block: Block, field: str, value: str) -> None:
    """SUMMARY / DESCRIPTION / LOCATION: the value replaced, LANGUAGE and X- params kept.

    ALTREP points at the old text and is dropped; a new description also drops the
    client's HTML twin ``X-ALT-DESC``, which would show the old text.
    """
    name = TEXT_PROPS[field]
    escaped = vText(value).to_ical().decode()
    first = next(iter(block.lines(name)), None)
    new = None
    if value:
        new = with_value(first, escaped, drop=("ALTREP",)) if first else Line(f"{name}:{escaped}")
    set_single(block, name, new)
    if field == "description":
        for line in block.lines("X-ALT-DESC"):
            block.remove(line)


def set_enum(block: Block, name: str, value: str) -> None:
    """STATUS / CLASS / TRANSP: one line with ``value`` (parameters kept)."""
    first = next(iter(block.lines(name)), None)
    set_single(block, name, with_value(first, value) if first else Line(f"{name}:{value}"))


def set_times(block: Block, current: Event, target: Event) -> None:
    """DTSTART and the end (DTEND; a DURATION is replaced), only where they changed."""
    start_moved = _key(current.start) != _key(target.start)
    if start_moved:
        set_single(block, "DTSTART", prop_line("DTSTART", target.start))
    has_duration = bool(block.lines("DURATION"))
    if _key(current.end) != _key(target.end) or (start_moved and has_duration):
        for line in block.lines("DURATION"):
            block.remove(line)
        set_single(block, "DTEND", prop_line("DTEND", target.end))


def _key(value: When) -> str:
    return encode_when(value)


def set_organizer(block: Block, email: str | None) -> None:
    """ORGANIZER: the address replaced (its own CN dropped), SCHEDULE-AGENT=CLIENT set."""
    if email is None:
        set_single(block, "ORGANIZER", None)
        return
    first = next(iter(block.lines("ORGANIZER")), None)
    if first is None:
        set_single(block, "ORGANIZER", _address("ORGANIZER", email, {"SCHEDULE-AGENT": "CLIENT"}))
        return
    moved = with_value(first, f"mailto:{email}", drop=("CN", "SENT-BY"))
    set_single(block, "ORGANIZER", with_params(moved, {"SCHEDULE-AGENT": "CLIENT"}))


def _address(name: str, email: str, params: dict[str, str]) -> Line:
    address = vCalAddress(f"mailto:{email}")
    for key, value in params.items():
        address.params[key] = value
    return prop_line(name, address)


def set_attendees(block: Block, target: Event) -> None:
    """ATTENDEE lines matched by e-mail: unchanged ones kept byte for byte, changed ones get
    new CN/PARTSTAT/ROLE (other parameters kept), missing ones added, removed ones dropped.
    """
    wanted = {a.email: a for a in target.attendees}
    seen: set[str] = set()
    for line in block.lines("ATTENDEE"):
        email = _people.normal_email(line.parts()[2])
        if email not in wanted:
            if email and email != target.organizer:
                block.remove(line)  # an attendee no longer invited (the organizer's is unread)
            continue
        if email in seen:
            continue  # a duplicate the reader ignores
        seen.add(email)
        changes = _attendee_changes(line, wanted[email])
        if changes:
            _replace(block, line, with_params(line, {**changes, "SCHEDULE-AGENT": "CLIENT"}))
    block.insert_after_props([_new_attendee(a) for a in target.attendees if a.email not in seen])


def _attendee_changes(line: Line, person: Attendee) -> dict[str, str | None]:
    _, params, _ = line.parts()
    out: dict[str, str | None] = {}
    if _common.clean_name(params.get("CN", "")) != person.name:
        out["CN"] = person.name or None
    if _READ_PARTSTAT.get(str(params.get("PARTSTAT", "")).upper(), "needs-action") != (
        person.partstat
    ):
        out["PARTSTAT"] = PARTSTAT[person.partstat]
    if (str(params.get("ROLE", "")).upper() in _OPTIONAL_ROLES) != person.optional:
        out["ROLE"] = "OPT-PARTICIPANT" if person.optional else "REQ-PARTICIPANT"
    return out


def _new_attendee(person: Attendee) -> Line:
    params = {"CN": person.name} if person.name else {}
    params |= {
        "PARTSTAT": PARTSTAT[person.partstat],
        "ROLE": "OPT-PARTICIPANT" if person.optional else "REQ-PARTICIPANT",
        "SCHEDULE-AGENT": "CLIENT",
    }
    return _address("ATTENDEE", person.email, params)


def set_alarms(block: Block, minutes_of: list[int | None], target: Event) -> None:
    """VALARMs matched by trigger minutes (``minutes_of`` per VALARM block, None = unread).

    Alarms at minutes the target keeps stay exactly as they are (any ACTION, any X- lines);
    alarms at minutes it dropped go; a DISPLAY alarm is added for each new minute.
    """
    wanted = set(target.reminders)
    have: set[int] = set()
    for alarm, minutes in zip(block.blocks("VALARM"), minutes_of, strict=True):
        if minutes is None:
            continue
        if minutes in wanted:
            have.add(minutes)
        else:
            block.remove(alarm)
    for minutes in sorted(wanted - have):
        block.items.append(block_of(display_alarm(minutes)))


def display_alarm(minutes: int) -> Alarm:
    """The VALARM syncd writes for a reminder: DISPLAY, ``minutes`` before the start."""
    new = Alarm()
    new.add("action", "DISPLAY")
    new.add("description", "Reminder")
    new.add("trigger", timedelta(minutes=-minutes))
    return new


def set_meeting(block: Block, old: str | None, new: str | None) -> None:
    """CONFERENCE / URL, read as "the first CONFERENCE, else the first URL"."""
    if new is None:
        for name in ("CONFERENCE", "URL"):
            set_single(block, name, None)
        return
    conference = [line for line in block.lines("CONFERENCE") if line.parts()[2].strip()]
    if conference:
        _replace(block, conference[0], with_value(conference[0], new))
    for line in block.lines("URL"):
        if not conference or line.parts()[2].strip() == old:
            _replace(block, line, with_value(line, new))
            break
    else:
        if not conference:
            block.insert_after_props([prop_line("URL", vUri(new))])
    if not conference:
        params = {"VALUE": "URI", "FEATURE": "VIDEO"}
        block.insert_after_props([prop_line("CONFERENCE", vUri(new), params)])


def set_rrule(block: Block, rule: str | None) -> None:
    """RRULE replaced by the canonical rule (or removed with every EXDATE)."""
    if rule is None:
        set_single(block, "RRULE", None)
        set_single(block, "EXDATE", None)
        return
    set_single(block, "RRULE", prop_line("RRULE", vRecur.from_ical(rule)))


def set_exdates(block: Block, keep_line: dict[int, bool], values: list[When]) -> None:
    """Drop the EXDATE lines not to keep (by index), then add one line with ``values``."""
    for index, line in enumerate(block.lines("EXDATE")):
        if not keep_line.get(index, False):
            block.remove(line)
    if values:
        block.insert_after_props([prop_line("EXDATE", list(values))])


def set_stamp(block: Block, target: Event) -> None:
    """DTSTAMP and LAST-MODIFIED to the target's ``updated`` (when known)."""
    if target.updated is None:
        return
    stamp = target.updated.astimezone(UTC)
    set_single(block, "DTSTAMP", prop_line("DTSTAMP", stamp))
    set_single(block, "LAST-MODIFIED", prop_line("LAST-MODIFIED", stamp))
