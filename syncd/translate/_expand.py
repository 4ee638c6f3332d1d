"""Occurrences of a series in bounded time: the one place syncd expands an RRULE.

dateutil does the expansion; two rules keep its cost bounded whatever the input:

- Only rules DingTalk can express (:func:`~._dtrecur.rrule_to_dingtalk`) are expanded.
  Such a rule occurs at least once every few periods, except a yearly rule on a day its
  month never has (February 30), which is refused as BrokenCalendarData: dateutil would
  look for it until the year 9999. Other rules (sub-daily, lists DingTalk lacks, ...) are
  not expanded: their exceptions get the benefit of the doubt, and DingTalk refuses the
  series anyway.
- At most :data:`~.limits.MAX_OCCURRENCES` occurrences are examined per call; a series
  that needs more is refused as Unrepresentable.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from datetime import datetime, time

from dateutil.rrule import rrulestr

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import When
from syncd.translate import limits
from syncd.translate._dtrecur import rrule_to_dingtalk
from syncd.translate._rrule import parse_parts, render

_FAILURES = (ValueError, TypeError, OverflowError)


def expandable(rule: str, start: When) -> bool:
    """True if syncd expands ``rule`` (see the module docstring); BrokenCalendarData if void."""
    try:
        rrule_to_dingtalk(rule, start)
    except Unrepresentable:
        return False
    parts = parse_parts(rule)
    if "BYMONTHDAY" in parts:  # one day of month, 1 or more (DingTalk's patterns)
        month = int(parts.get("BYMONTH", "1")) if parts["FREQ"] == "YEARLY" else 1
        day = int(parts["BYMONTHDAY"])
        if not 1 <= month <= 12 or day > calendar.monthrange(2024, month)[1]:  # 2024: leap
            raise BrokenCalendarData(f"RRULE {rule} never occurs: no such day", field="rrule")
    return True


def _walk(rule: str, start: When, stop: datetime) -> Iterator[datetime]:
    """The occurrences up to ``stop`` (inclusive), at most MAX_OCCURRENCES of them."""
    anchor = naive_or_aware(start)
    try:
        for n, found in enumerate(rrulestr(rule, dtstart=anchor)):
            if found > stop:
                return
            if n >= limits.MAX_OCCURRENCES:
                what = f"occurrences of RRULE {rule[:80]} before {stop:%Y-%m-%d}"
                raise limits.over(what, n + 1, limits.MAX_OCCURRENCES)
            yield found
    except _FAILURES:
        return  # dateutil gave up (a date past the year 9999): nothing further occurs


def real(rule: str, start: When, moments: Sequence[When]) -> list[bool]:
    """For each moment, True if it is an occurrence of the canonical ``rule`` from ``start``.

    DTSTART always counts (RFC 5545); a moment of the other kind (date vs date-time) never
    does; rules syncd does not expand count every moment of the start's kind. One walk
    over the series serves every moment.
    """
    same = [isinstance(m, datetime) == isinstance(start, datetime) for m in moments]
    if not any(same) or not expandable(rule, start):
        return [m == start or ok for m, ok in zip(moments, same, strict=True)]
    wanted = {naive_or_aware(m) for m, ok in zip(moments, same, strict=True) if ok}
    found = {o for o in _walk(rule, start, max(wanted)) if o in wanted}
    return [
        m == start or (ok and naive_or_aware(m) in found)
        for m, ok in zip(moments, same, strict=True)
    ]


def first_between(rule: str, start: datetime, low: datetime, high: datetime) -> datetime | None:
    """The first occurrence in ``(low, high]`` of ``rule`` without its UNTIL, or None.

    A rule syncd does not expand answers ``low``: nothing can be said about the window.
    """
    parts = parse_parts(rule)
    parts.pop("UNTIL", None)
    bare = render(parts)
    if not expandable(bare, start):
        return low
    return next((o for o in _walk(bare, start, high) if o > low), None)


def naive_or_aware(value: When) -> datetime:
    """A datetime as is; a date as its midnight (naive), as dateutil expands all-day rules."""
    return value if isinstance(value, datetime) else datetime.combine(value, time())
