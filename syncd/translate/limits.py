"""What reading one calendar object resource may cost: every limit in one place.

Remote iCalendar (a CalDAV item, an ICS feed) may be hostile: megabyte values, deep
nesting, a hundred thousand events in one resource, ``COUNT=1000000000``, rules that
never occur. :func:`check_text` looks at the raw text before it is parsed, and the
recurrence code (:mod:`._expand`, :mod:`._rrule`, :mod:`._vtimezone`) keeps to the other
numbers, so time and memory per item stay bounded. An item over a limit is refused with
:class:`~syncd.errors.Unrepresentable` and a one-line reason that names the limit; the
caller leaves it alone and the rest of the collection syncs.

Each limit sits far above what calendar clients write (an event with its alarms and a
few hundred exceptions, a two-level VTIMEZONE, one-line values of a few kilobytes).
"""

from __future__ import annotations

from syncd.errors import Unrepresentable

MAX_RESOURCE_BYTES = 4 * 1024 * 1024  # UTF-8 bytes of one calendar object resource
MAX_LINE_CHARS = 256 * 1024  # one unfolded content line: name, parameters and value
MAX_COMPONENTS = 2_000  # BEGIN: lines in one resource (events, alarms, zones, ...)
MAX_DEPTH = 8  # component nesting; VCALENDAR > VEVENT > VALARM is 3
MAX_TIMEZONES = 20  # VTIMEZONE components in one resource
MAX_ZONE_RULES = 50  # STANDARD / DAYLIGHT parts of one VTIMEZONE
MAX_ZONE_MATCHES = 8  # searches for the IANA zone of a VTIMEZONE, per resource
MAX_OCCURRENCES = 100_000  # occurrences of one RRULE examined while checking one series
MAX_COUNT = 100_000  # largest RRULE COUNT syncd keeps
MAX_EXCEPTIONS = 1_000  # overrides plus EXDATEs of one series


def over(what: str, found: int, limit: int) -> Unrepresentable:
    """The error for a value over a limit: ``'... (N) is over syncd's limit of M'``."""
    return Unrepresentable(f"{what} ({found:,}) is over syncd's limit of {limit:,}")


def check_text(text: str) -> None:
    """Refuse a resource whose size, lines, components or nesting are over the limits.

    One pass over the text, before any parsing; raises Unrepresentable with the reason.
    """
    if len(text) > MAX_RESOURCE_BYTES or len(text.encode("utf-8", "replace")) > MAX_RESOURCE_BYTES:
        raise over(
            "resource size in bytes", len(text.encode("utf-8", "replace")), MAX_RESOURCE_BYTES
        )
    depth = components = line = 0
    for raw in text.splitlines():
        if raw[:1] in (" ", "\t"):  # a folded continuation of the line before
            line += len(raw) - 1
        else:
            line = len(raw)
            head = raw[:6].upper()
            if head == "BEGIN:":
                depth, components = depth + 1, components + 1
            elif head[:4] == "END:":
                depth = max(0, depth - 1)
        if line > MAX_LINE_CHARS:
            raise over("one content line's length in characters", line, MAX_LINE_CHARS)
        if depth > MAX_DEPTH:
            raise over("component nesting depth", depth, MAX_DEPTH)
        if components > MAX_COMPONENTS:
            raise over("number of components", components, MAX_COMPONENTS)
