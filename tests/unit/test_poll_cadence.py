"""The adaptive poll interval (``poll_cadence``): fast after a change, slower when idle."""

from __future__ import annotations

import pytest

from syncd.config import PollCadence, Settings


def test_defaults_fast_then_settle_then_steady_then_idle() -> None:
    """With the defaults a 30 s binding polls every 2 s for 2 min after a change, grows back
    to 30 s over the next 5 min, stays there, and polls every 60 s after an idle hour."""
    c = Settings().poll_cadence
    assert c.interval(30, 0) == 2
    assert c.interval(30, 119) == 2
    assert c.interval(30, 120 + 150) == pytest.approx(16)  # half-way through settling
    assert c.interval(30, 420) == 30
    assert c.interval(30, 3599) == 30
    assert c.interval(30, 3600) == 60
    assert c.interval(30, None) == 60  # no change remembered: idle


def test_never_faster_than_the_binding_asks_nor_slower_when_fixed() -> None:
    """A binding polled every 1 s stays at 1 s after a change; ``fast`` at least the
    binding's interval and ``idle_factor`` 1 make the interval fixed."""
    assert PollCadence().interval(1, 0) == 1
    fixed = PollCadence(fast=3600, idle_factor=1)
    assert {fixed.interval(30, s) for s in (None, 0, 10, 500, 10_000)} == {30}


def test_interval_never_shrinks_as_the_change_ages() -> None:
    """Between a change and idleness the interval only grows (no second burst of polls)."""
    c = PollCadence()
    values = [c.interval(30, s) for s in range(0, 4000, 7)]
    assert values == sorted(values)
