"""Normalisation shared by both sides, so a re-read never looks like a change.

- Text: CR LF and lone CR become LF; control characters other than TAB and LF (which
  iCalendar cannot carry) are removed. Nothing else is touched.
- Names (CN, displayName): whitespace runs become one space, ``"`` becomes ``'`` and
  a backslash ``/`` (icalendar 7 cannot read a backslash back from a parameter value).
- Reminders: whole minutes before the start, de-duplicated, sorted ascending.
- Exceptions: EXDATEs and RECURRENCE-IDs are expressed like the master's start (dates for
  all-day series, the master's zone for timed ones); an override that says nothing the
  master does not already say for that occurrence is dropped; a cancelled override is an
  EXDATE; EXDATEs and overrides of instants that are not occurrences of the rule are
  dropped (with a warning): no side could show them. The rule is expanded once for all
  of them (:mod:`._expand`); a series with more than :data:`~.limits.MAX_EXCEPTIONS`
  exceptions is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import structlog

from syncd.model import Event, Recurrence, When, encode_when
from syncd.translate import _expand, _time, limits

log = structlog.get_logger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: object) -> str:
    """Text as the model keeps it (see the module docstring)."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def clean_name(value: object) -> str:
    """A display name as a parameter value can carry it: one line, no double quotes."""
    return " ".join(clean_text(value).replace('"', "'").replace("\\", "/").split())


def reminders(minutes: Iterable[int]) -> tuple[int, ...]:
    """Sorted, unique, non-negative minutes."""
    return tuple(sorted({max(0, int(m)) for m in minutes}))


def occurrence_of(master: Event, rid: When) -> Event:
    """The occurrence the master's rule produces at ``rid`` (for redundancy checks)."""
    return dataclasses.replace(
        master,
        start=rid,
        end=rid + (master.end - master.start),  # type: ignore[operator]
        recurrence=None,
        overrides=(),
        recurrence_id=rid,
    )


def finish_series(master: Event, exdates: Iterable[When], overrides: Iterable[Event]) -> Event:
    """Attach exceptions to a master in canonical form (see the module docstring)."""
    if master.recurrence is None:
        return master
    ref = master.start
    cancelled = [o.recurrence_id for o in overrides if o.status == "cancelled" and o.recurrence_id]
    kept: dict[str, Event] = {}
    for item in overrides:
        if item.status == "cancelled" or item.recurrence_id is None:
            continue
        rid = _time.like(item.recurrence_id, ref)
        item = dataclasses.replace(item, uid=master.uid, recurrence_id=rid)
        if item.fingerprint() != occurrence_of(master, rid).fingerprint():
            kept[encode_when(rid)] = item
    days = {encode_when(d): d for d in (_time.like(x, ref) for x in [*exdates, *cancelled])}
    _check_count(master, len(kept) + len(days))
    moments = [*(o.recurrence_id or ref for o in kept.values()), *days.values()]
    real = dict(zip(map(encode_when, moments), real_moments(master, moments), strict=True))
    for key in [k for k in kept if not real[k]]:
        log.warning("override_of_no_occurrence", uid=master.uid, recurrence_id=key)
        del kept[key]
    days = {k: d for k, d in days.items() if real[k]}
    for key in days:
        kept.pop(key, None)
    recurrence = Recurrence(master.recurrence.rrule, tuple(days[k] for k in sorted(days)))
    ordered = tuple(kept[k] for k in sorted(kept))
    return dataclasses.replace(master, recurrence=recurrence, overrides=ordered)


def _check_count(master: Event, exceptions: int) -> None:
    if exceptions > limits.MAX_EXCEPTIONS:
        raise limits.over(f"exceptions of series {master.uid}", exceptions, limits.MAX_EXCEPTIONS)


def real_moments(master: Event, moments: Sequence[When | None]) -> list[bool]:
    """For each moment, True if it is an occurrence of the master's rule (one expansion)."""
    assert master.recurrence is not None
    known = [m for m in moments if m is not None]
    found = iter(_expand.real(master.recurrence.rrule, master.start, known))
    return [m is not None and next(found) for m in moments]
