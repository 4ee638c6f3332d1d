"""Match a custom (non-IANA) time zone, e.g. one built from a VTIMEZONE, to an IANA zone.

Two zones match when their UTC offsets agree at noon UTC every week of the three years
around the value, every day of a week in which the offset changes and every hour around
each change (so DST rules, transition days and transition hours agree; a change undone
within one week would go unseen). Candidates are tried in a fixed order after any the
caller prefers: the CLDR primary zones of the Windows table first, then every IANA zone
by name, so the answer is deterministic.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_UTC = ZoneInfo("UTC")
_PROBES = tuple(datetime(2000 + y, m, 15, 12, tzinfo=_UTC) for y in (24, 25) for m in (1, 4, 7, 10))


@functools.cache
def _candidates() -> tuple[ZoneInfo, ...]:
    preferred = list(dict.fromkeys(WINDOWS_TO_OLSON.values()))
    rest = sorted(set(zoneinfo.available_timezones()) - set(preferred))
    out = []
    for name in [*preferred, *rest]:
        if name.startswith(("posix/", "right/")) or name in {"localtime", "Factory"}:
            continue
        try:
            out.append(ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(out)


@functools.cache
def _probe_offsets(key: str) -> tuple[timedelta | None, ...]:
    tz = ZoneInfo(key)
    return tuple(p.astimezone(tz).utcoffset() for p in _PROBES)


def _offsets(tz: tzinfo, instants: tuple[datetime, ...]) -> tuple[timedelta | None, ...] | None:
    try:
        return tuple(i.astimezone(tz).utcoffset() for i in instants)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None


def match_custom_zone(
    tz: tzinfo, value: datetime, prefer: tuple[ZoneInfo, ...] = ()
) -> ZoneInfo | None:
    """The first IANA zone whose offsets equal ``tz``'s around ``value``, or None.

    ``prefer`` is tried before the fixed order (e.g. the zone a display-name TZID names).
    """
    wanted = _offsets(tz, _PROBES)
    if wanted is None:
        return None
    instants = _instants(tz, value)
    exact = _offsets(tz, instants) if instants else None
    if exact is None:
        return None
    for candidate in (*prefer, *_candidates()):
        if _probe_offsets(candidate.key) == wanted and _offsets(candidate, instants) == exact:
            return candidate
    return None


def span(value: datetime) -> tuple[datetime, datetime]:
    """The three whole years (UTC) around ``value`` over which a match is checked."""
    year = min(max(value.year, 2), 9997)  # inside datetime's range
    return datetime(year - 1, 1, 1, tzinfo=_UTC), datetime(year + 2, 1, 1, tzinfo=_UTC)


def _instants(tz: tzinfo, value: datetime) -> tuple[datetime, ...]:
    """Noon UTC of every week of the span, of every day of a week in which the offset
    changes, and every hour in the day and a half before each change."""
    first = span(value)[0] + timedelta(hours=12)
    weeks = [first + timedelta(days=7 * n) for n in range(157)]
    weekly = _offsets(tz, tuple(weeks))
    if weekly is None:
        return ()
    days = [
        weeks[i - 1] + timedelta(days=d)
        for i in range(1, len(weeks))
        if weekly[i] != weekly[i - 1]
        for d in range(1, 7)
    ]
    noons = sorted({*weeks, *days})
    offsets = _offsets(tz, tuple(noons))
    if offsets is None:
        return ()
    hours = [
        noons[i] + timedelta(hours=h)
        for i in range(1, len(noons))
        if offsets[i] != offsets[i - 1]
        for h in range(-36, 1)
    ]
    return (*noons, *hours)
