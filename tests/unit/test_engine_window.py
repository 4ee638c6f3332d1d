"""A complete listing that covers a window says nothing about events outside it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from syncd.errors import SourceEmptied
from syncd.model import Changes
from syncd.sync import Delete
from tests.fakes import ev, kinds, paired, pairs, r, run

# ev() starts on 2025-03-03; this window covers 2025-01-01 .. 2025-12-31.
WINDOW = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))
LATER = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def windowed(*items: object, window: tuple[datetime, datetime] = WINDOW) -> Changes:
    """A complete DingTalk listing limited to ``window``."""
    return Changes(tuple(items), (), "c2", complete=True, window=window)  # type: ignore[arg-type]


def test_absent_inside_the_window_is_deleted() -> None:
    """A mapped event whose start the window covers, absent from it, was deleted in DingTalk."""
    plan = run(
        pairs(paired(ev("u1")), paired(ev("u2"), dt="dt-2", href="u2.ics")),
        windowed(r("dt-2", ev("u2"))),
    )
    assert kinds(plan) == ["Delete"]
    assert [a.uid for a in plan if isinstance(a, Delete)] == ["u1"]


def test_absent_outside_the_window_is_left_alone() -> None:
    """An event that merely left the listed window is not deleted on the other side."""
    kept = ev("u1")  # starts 2025-03-03, before LATER
    other = ev(
        "u2", start=datetime(2025, 8, 1, 10, tzinfo=UTC), end=datetime(2025, 8, 1, 11, tzinfo=UTC)
    )
    states = pairs(paired(kept), paired(other, dt="dt-2", href="u2.ics"))
    assert list(run(states, windowed(r("dt-2", other), window=LATER))) == []


def test_all_day_event_at_the_window_edge_is_not_read_as_absent() -> None:
    """A day of slack at each edge: an all-day event on the first day is never 'deleted'."""
    edge = dataclasses.replace(ev("u1"), start=date(2025, 6, 1), end=date(2025, 6, 2))
    other = ev(
        "u2", start=datetime(2025, 8, 1, 10, tzinfo=UTC), end=datetime(2025, 8, 1, 11, tzinfo=UTC)
    )
    states = pairs(paired(edge), paired(other, dt="dt-2", href="u2.ics"))
    assert list(run(states, windowed(r("dt-2", other), window=LATER))) == []


def test_empty_window_with_all_pairs_outside_it_is_not_an_emptied_source() -> None:
    """Nothing mapped lies in the window: an empty listing there is legitimate."""
    assert list(run(pairs(paired(ev("u1"))), windowed(window=LATER))) == []


def test_empty_window_with_pairs_inside_it_is_still_refused() -> None:
    """The emptied-source guard still holds for pairs the window covers."""
    with pytest.raises(SourceEmptied):
        run(pairs(paired(ev("u1"))), windowed())
