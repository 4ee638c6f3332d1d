"""Hostile iCalendar: each input is refused with its reason (or read) within bounded work.

Work is counted, not timed: the number of function calls (Python and C) made while
translating, through ``sys.setprofile``. A normal event costs about 10,000 calls; every
hostile case must stay under :data:`WORK_BOUND`, whatever its size. (Seconds per case
are measured by ``bench/hostile.py``.)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from syncd.errors import TranslationError, Unrepresentable
from syncd.translate import event_from_ical, event_to_dingtalk, limits
from tests.fixtures.dingtalk_shapes import CTX
from tests.fixtures.hostile import CASES, TIMED, Case, vcalendar

WORK_BOUND = 3_000_000  # function calls per resource


def work(action: Callable[[], Any]) -> tuple[int, Any]:
    """``(calls made, result or the TranslationError raised)`` of ``action()``."""
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        result: Any = action()
    except TranslationError as exc:
        result = exc
    finally:
        sys.setprofile(None)
    return calls, result


def test_a_normal_event_is_far_below_the_bound() -> None:
    """The yardstick: a plain timed event costs a small fraction of the bound."""
    calls, event = work(lambda: event_from_ical(vcalendar(*TIMED), CTX))
    assert event.summary == "x"
    assert calls < WORK_BOUND / 100


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_with_its_reason_within_bounded_work(case: Case) -> None:
    """The case's error and reason (one line), or a read event; under WORK_BOUND calls."""
    text = case.build()
    calls, result = work(lambda: event_from_ical(text, CTX))
    assert calls < WORK_BOUND, f"{case.name}: {calls:,} calls"
    if case.error is None:
        assert not isinstance(result, Exception), result
        return
    assert isinstance(result, case.error), result
    message = str(result)
    assert "\n" not in message
    assert re.search(case.reason, message), message


@pytest.mark.parametrize("name", ["BYSECOND storm", "daily rule that never occurs"])
def test_rules_syncd_does_not_expand_are_refused_for_dingtalk(name: str) -> None:
    """Read without expanding them (their EXDATEs kept), then refused for DingTalk."""
    (case,) = [c for c in CASES if c.name.startswith(name)]
    event = event_from_ical(case.build(), CTX)
    assert event.recurrence is not None
    assert len(event.recurrence.exdates) > 50
    with pytest.raises(Unrepresentable, match="DingTalk"):
        event_to_dingtalk(event, CTX)


def test_the_occurrence_cap_is_exact() -> None:
    """A series is walked to exactly MAX_OCCURRENCES occurrences, then refused."""
    start = "DTSTART:20000101T100000Z"
    fits = f"EXDATE:{2000 + limits.MAX_OCCURRENCES // 366 - 1}0101T100000Z"
    assert event_from_ical(vcalendar(start, "RRULE:FREQ=DAILY", fits), CTX).recurrence
    with pytest.raises(Unrepresentable, match=f"\\({limits.MAX_OCCURRENCES + 1:,}\\)"):
        event_from_ical(vcalendar(start, "RRULE:FREQ=DAILY", "EXDATE:25000101T100000Z"), CTX)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("BEGIN:VCALENDAR\n" + "X" * (limits.MAX_LINE_CHARS + 1) + "\n", "line's length"),
        ("BEGIN:VCALENDAR\nX:" + "\n y" * (limits.MAX_LINE_CHARS + 1), "line's length"),
        ("BEGIN:X\n" * (limits.MAX_DEPTH + 1), "nesting depth"),
        ("BEGIN:X\nEND:X\n" * (limits.MAX_COMPONENTS + 1), "number of components"),
        ("é" * (limits.MAX_RESOURCE_BYTES // 2 + 1), "size in bytes"),
    ],
)
def test_check_text_limits(text: str, reason: str) -> None:
    """Each pre-parse limit, one past its value (size counted in UTF-8 bytes)."""
    with pytest.raises(Unrepresentable, match=reason):
        limits.check_text(text)


def test_check_text_accepts_what_is_just_under_the_limits() -> None:
    """At the limits exactly, nothing is refused."""
    limits.check_text("BEGIN:X\n" * limits.MAX_DEPTH)
    limits.check_text("BEGIN:X\nEND:X\n" * limits.MAX_COMPONENTS)
    limits.check_text("X:" + "y" * (limits.MAX_LINE_CHARS - 2))
