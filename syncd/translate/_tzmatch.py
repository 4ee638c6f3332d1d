"""Match a custom (non-IANA) time zone, e.g. one built from a VTIMEZONE, to an IANA zone.

Two zones match when their UTC offsets agree at noon UTC on every day of the three years
around the value and at every hour around each change (so DST rules, transition days and
transition hours agree). Candidates are tried in a fixed order after any the caller
prefers: the CLDR primary zones of the Windows table first, then every IANA zone by name,
so the answer is deterministic.
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


def _instants(tz: tzinfo, value: datetime) -> tuple[datetime, ...]:
    """Noon UTC of every day in three years, plus every hour around each offset change."""
    year = min(max(value.year, 2), 9997)  # three whole years inside datetime's range
    first = datetime(year - 1, 1, 1, 12, tzinfo=_UTC)
    days = [first + timedelta(days=n) for n in range(3 * 366)]
    offsets = _offsets(tz, tuple(days))
    if offsets is None:
        return ()
    hours = [
        days[i] + timedelta(hours=h)
        for i in range(1, len(days))
        if offsets[i] != offsets[i - 1]
        for h in range(-36, 1)
    ]
    return (*days, *hours)
