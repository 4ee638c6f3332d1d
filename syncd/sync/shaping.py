"""Filters and transforms of a binding: pure functions on events (no I/O, no clock).

A binding may shape what it copies (configuration: ``mirror``, ``busy_title``, ``filter``,
``transform``; see docs/mirrors-and-filters.md):

- :func:`passes` decides whether an event is copied at all (declined by the bound user,
  all-day, private, free, a summary matching an excluded pattern);
- :func:`busy_projection` keeps only what a free/busy mirror shows: the time, all-day-ness,
  the recurrence with its exceptions and the free/busy state, under ``busy_title``;
- :func:`prefix_out` / :func:`prefix_back` mark a copy's summary and unmark it on the way
  back, never accumulating (``prefix_out`` is idempotent, ``prefix_back`` its inverse on
  everything ``prefix_out`` produces).

:class:`Shaping` bundles them. A pair's *origin* (the side the event was born on) holds the
event as its user wrote it; its *copy* on the other side holds ``Shaping.out(event)``.
What the copy's user changes comes back through :meth:`Shaping.back`, which keeps of the
copy only what it can carry (a busy copy: its time) and takes everything else from the
origin's version, so a busy mirror never writes "Busy" over a real title.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.model import Event, encode_when

FILTERED = "filtered:"
"""How the reason of every decision made by a binding's filter begins."""
DEFAULT_BUSY_TITLE = "Busy"
# What a busy copy carries of its source, and so what comes back from it.
BUSY_FIELDS: tuple[str, ...] = ("start", "end", "free_busy", "recurrence", "recurrence_id")


@dataclass(frozen=True, slots=True)
class Filter:
    """Which events a binding copies (configuration ``filter``; every rule off by default).

    ``exclude_summary`` holds compiled patterns, searched (``re.search``) in the summary.
    """

    skip_declined: bool = False
    skip_all_day: bool = False
    skip_private: bool = False
    skip_free: bool = False
    exclude_summary: tuple[re.Pattern[str], ...] = ()

    @property
    def active(self) -> bool:
        """Whether any rule is on (an inactive filter passes everything)."""
        rules = (self.skip_declined, self.skip_all_day, self.skip_private, self.skip_free)
        return any(rules) or bool(self.exclude_summary)

    @classmethod
    def build(
        cls,
        *,
        skip_declined: bool = False,
        skip_all_day: bool = False,
        skip_private: bool = False,
        skip_free: bool = False,
        exclude_summary: Sequence[str] = (),
    ) -> Filter:
        """A filter from configuration values; ``re.error`` for a bad pattern."""
        return cls(
            skip_declined,
            skip_all_day,
            skip_private,
            skip_free,
            tuple(re.compile(p) for p in exclude_summary),
        )


def rejection(rules: Filter, event: Event, bound_email: str | None) -> str | None:
    """Why ``event`` does not pass ``rules`` (one short reason), or None when it passes.

    ``bound_email`` is the bound user's address: "declined" means that attendee answered
    declined (an event the user organizes, or is not invited to, is never "declined").
    """
    if rules.skip_declined and bound_email and _declined(event, bound_email):
        return "declined by the bound user"
    if rules.skip_all_day and event.all_day:
        return "all-day"
    if rules.skip_private and event.privacy != "public":
        return f"{event.privacy}"
    if rules.skip_free and event.free_busy == "free":
        return "free (transparent)"
    for pattern in rules.exclude_summary:
        if pattern.search(event.summary):
            return f"summary matches {pattern.pattern!r}"
    return None


def passes(rules: Filter, event: Event, bound_email: str | None) -> bool:
    """Whether ``event`` is copied under ``rules`` (see :func:`rejection`)."""
    return rejection(rules, event, bound_email) is None


def _declined(event: Event, email: str) -> bool:
    wanted = email.lower()
    return any(a.email.lower() == wanted and a.partstat == "declined" for a in event.attendees)


def busy_projection(event: Event, busy_title: str = DEFAULT_BUSY_TITLE) -> Event:
    """What a free/busy mirror shows of ``event``: its time, all-day-ness, recurrence and
    exceptions (cancelled and moved occurrences) and free/busy state, titled
    ``busy_title``; no description, location, people, alarms, link, privacy or status.

    Idempotent: projecting a projection changes nothing.
    """
    return Event(
        uid=event.uid,
        summary=busy_title,
        start=event.start,
        end=event.end,
        free_busy=event.free_busy,
        recurrence=event.recurrence,
        recurrence_id=event.recurrence_id,
        overrides=tuple(busy_projection(o, busy_title) for o in event.overrides),
        updated=event.updated,
    )


def busy_back(copy: Event, source: Event) -> Event:
    """``source`` with the time of its busy ``copy``: all a busy copy can say.

    The copy's moved occurrences keep the details of the source's override of the same
    occurrence, else of the series (a new exception); its title, text and people never
    come back.
    """
    mine = {_rid(o): o for o in source.overrides}
    overrides = tuple(
        _timed(o, mine.get(_rid(o)) or dataclasses.replace(source, overrides=()))
        for o in copy.overrides
    )
    return dataclasses.replace(_timed(copy, source), overrides=overrides, uid=source.uid)


def _timed(copy: Event, details: Event) -> Event:
    values = {name: getattr(copy, name) for name in BUSY_FIELDS}
    return dataclasses.replace(details, overrides=(), **values)


def _rid(event: Event) -> str:
    return encode_when(event.recurrence_id) if event.recurrence_id is not None else ""


def shows_details(copy: Event, source: Event, busy_title: str = DEFAULT_BUSY_TITLE) -> bool:
    """Whether a copy meant to be busy-only still shows what only the source may: a
    description, location or meeting link, or the source's real title (a copy made before
    its binding became a busy mirror)."""
    if copy.description or copy.location or copy.online_meeting_url:
        return True
    real = source.summary
    return bool(real) and real != busy_title and copy.summary == real


def prefix_out(summary: str, prefix: str) -> str:
    """``summary`` marked with ``prefix`` (unchanged when it already starts with it)."""
    if not prefix or summary.startswith(prefix):
        return summary
    return prefix + summary


def prefix_back(summary: str, prefix: str) -> str:
    """``summary`` without one leading ``prefix`` (unchanged when it has none: the user
    removed the mark, so what they typed is the title)."""
    return summary.removeprefix(prefix) if prefix else summary


@dataclass(frozen=True, slots=True)
class Shaping:
    """How one binding shapes its copies: the filter, busy mirroring and the prefix.

    ``bound_email`` is the bound DingTalk user's e-mail (for ``skip_declined``).
    """

    mirror_busy: bool = False
    busy_title: str = DEFAULT_BUSY_TITLE
    summary_prefix: str = ""
    filter: Filter = field(default_factory=Filter)
    bound_email: str | None = None

    @property
    def transforms(self) -> bool:
        """Whether a copy differs from its source (busy mirror or prefix)."""
        return self.mirror_busy or bool(self.summary_prefix)

    def rejection(self, event: Event) -> str | None:
        """Why ``event`` is not copied (``"filtered: ..."``), or None when it is."""
        why = rejection(self.filter, event, self.bound_email)
        return f"{FILTERED} {why}" if why is not None else None

    def out(self, event: Event) -> Event:
        """What the copy of ``event`` holds."""
        if self.mirror_busy:
            event = busy_projection(event, self.busy_title)
        if not self.summary_prefix:
            return event
        return _summaries(event, lambda s: prefix_out(s, self.summary_prefix))

    def back(self, copy: Event, source: Event | None) -> Event:
        """What ``copy`` says of its source event (``source``: the source's version to
        complete it from; a busy copy without one stands for itself)."""
        if self.summary_prefix:
            copy = _summaries(copy, lambda s: prefix_back(s, self.summary_prefix))
        if self.mirror_busy and source is not None:
            return busy_back(copy, source)
        return copy

    def norm(self, copy: Event) -> Event:
        """``copy`` as syncd would have shaped what it shows: equal to ``out(source)`` when
        the copy needs no write for ``source`` (a copy whose user removed its prefix, or
        retitled a busy copy, still shows ``source``)."""
        return self.out(copy)


def _summaries(event: Event, change: Callable[[str], str]) -> Event:
    overrides = tuple(dataclasses.replace(o, summary=change(o.summary)) for o in event.overrides)
    return dataclasses.replace(event, summary=change(event.summary), overrides=overrides)
