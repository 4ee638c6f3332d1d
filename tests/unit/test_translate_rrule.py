"""Recurrence: canonical RRULE text, RRULE ⇄ DingTalk patterns, occurrences (dateutil oracle)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import When
from syncd.translate import canonical_rrule, dingtalk_to_rrule, rrule_to_dingtalk

SH = ZoneInfo("Asia/Shanghai")
TIMED = datetime(2025, 9, 20, 10, tzinfo=SH)  # a Saturday
DAY = date(2025, 9, 20)


@pytest.mark.parametrize(
    ("raw", "start", "canonical"),
    [
        ("RRULE:freq=weekly;interval=1;byday=FR,MO", None, "FREQ=WEEKLY;BYDAY=MO,FR"),
        ("FREQ=WEEKLY", TIMED, "FREQ=WEEKLY;BYDAY=SA"),
        ("FREQ=MONTHLY;COUNT=3", TIMED, "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=20"),
        ("FREQ=YEARLY", DAY, "FREQ=YEARLY;BYMONTHDAY=20;BYMONTH=9"),
        ("FREQ=YEARLY;BYMONTHDAY=1", DAY, "FREQ=YEARLY;BYMONTHDAY=1"),
        ("FREQ=MONTHLY;BYDAY=TU;BYSETPOS=-1", DAY, "FREQ=MONTHLY;BYDAY=-1TU"),
        ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", DAY, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("FREQ=DAILY;INTERVAL=2;BYDAY=MO", DAY, "FREQ=DAILY;INTERVAL=2;BYDAY=MO"),
        ("FREQ=WEEKLY;UNTIL=20251231", TIMED, "FREQ=WEEKLY;UNTIL=20251230T160000Z;BYDAY=SA"),
        ("FREQ=WEEKLY;UNTIL=20251231T100000", TIMED, "FREQ=WEEKLY;UNTIL=20251231T020000Z;BYDAY=SA"),
        ("FREQ=DAILY;UNTIL=20251231T235959Z", DAY, "FREQ=DAILY;UNTIL=20251231"),
        ("FREQ=WEEKLY;BYDAY=MO;WKST=SU", DAY, "FREQ=WEEKLY;BYDAY=MO"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU", DAY, "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU"),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU",
            DAY,
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU",
        ),
        ("FREQ=DAILY;COUNT=-1", DAY, "FREQ=DAILY"),
        ("FREQ=MONTHLY;BYMONTHDAY=15,1,15;BYHOUR=9", None, "FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=9"),
    ],
)
def test_canonical_rrule(raw: str, start: When | None, canonical: str) -> None:
    """One canonical text per meaning: order, defaults, implicit parts, UNTIL form."""
    assert canonical_rrule(raw, start) == canonical
    assert canonical_rrule(canonical, start) == canonical  # idempotent


@pytest.mark.parametrize(
    "raw", ["", "BYDAY=MO", "FREQ=FORTNIGHTLY", "FREQ=DAILY;COUNT=x", "FREQ=WEEKLY;BYDAY=XX"]
)
def test_broken_rrules_raise(raw: str) -> None:
    """Malformed RRULE text is BrokenCalendarData, not a crash."""
    with pytest.raises(BrokenCalendarData):
        canonical_rrule(raw, DAY)


@pytest.mark.parametrize(
    ("rrule", "start", "recurrence"),
    [
        (
            "FREQ=DAILY;INTERVAL=3",
            DAY,
            {"pattern": {"type": "daily", "interval": 3}, "range": {"type": "noEnd"}},
        ),
        (
            "FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE",
            TIMED,
            {
                "pattern": {"type": "weekly", "daysOfWeek": "monday,wednesday", "interval": 1},
                "range": {"type": "numbered", "numberOfOccurrences": 10},
            },
        ),
        (
            "FREQ=MONTHLY;UNTIL=20251231T155959Z;BYMONTHDAY=20",
            TIMED,
            {
                "pattern": {"type": "absoluteMonthly", "dayOfMonth": 20, "interval": 1},
                "range": {"type": "endDate", "endDate": "2025-12-31T15:59:59Z"},
            },
        ),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            DAY,
            {
                "pattern": {
                    "type": "relativeMonthly",
                    "index": "last",
                    "daysOfWeek": "friday",
                    "interval": 1,
                },
                "range": {"type": "noEnd"},
            },
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1",
            DAY,
            {
                "pattern": {
                    "type": "relativeMonthly",
                    "index": "first",
                    "daysOfWeek": "monday,tuesday",
                    "interval": 1,
                },
                "range": {"type": "noEnd"},
            },
        ),
        (
            "FREQ=YEARLY;UNTIL=20300920;BYMONTHDAY=20;BYMONTH=9",
            DAY,
            {
                "pattern": {"type": "absoluteYearly", "dayOfMonth": 20, "interval": 1},
                "range": {"type": "endDate", "endDate": "2030-09-20"},
            },
        ),
        (
            "FREQ=YEARLY;BYDAY=3SA;BYMONTH=9",
            DAY,
            {
                "pattern": {
                    "type": "relativeYearly",
                    "index": "third",
                    "daysOfWeek": "saturday",
                    "interval": 1,
                },
                "range": {"type": "noEnd"},
            },
        ),
    ],
)
def test_rrule_dingtalk_table(rrule: str, start: When, recurrence: dict[str, Any]) -> None:
    """Each DingTalk pattern type maps to one RRULE and back."""
    assert rrule_to_dingtalk(rrule, start) == recurrence
    assert dingtalk_to_rrule(recurrence, start) == canonical_rrule(rrule, start)


@pytest.mark.parametrize(
    "rrule",
    [
        "FREQ=HOURLY",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=YEARLY;BYWEEKNO=20",
        "FREQ=MONTHLY;BYDAY=1MO,3MO",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1,2",
        "FREQ=MONTHLY;BYDAY=5MO",
        "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1",
        "FREQ=DAILY;COUNT=3;UNTIL=20260101",
        "FREQ=WEEKLY;BYDAY=1MO",
        "FREQ=DAILY;BYHOUR=9,17",
    ],
)
def test_unrepresentable_rrules_say_why(rrule: str) -> None:
    """Rules DingTalk cannot express raise Unrepresentable with the reason."""
    with pytest.raises(Unrepresentable) as info:
        rrule_to_dingtalk(rrule, DAY)
    assert "DingTalk" in str(info.value)


DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, When]:
    """A random DingTalk-representable RRULE in non-canonical spelling, with its start."""
    day = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    start: When = day
    if draw(st.booleans()):
        start = datetime.combine(
            day,
            time(draw(st.integers(0, 23)), 30),
            tzinfo=ZoneInfo(draw(st.sampled_from(["Asia/Shanghai", "America/New_York", "UTC"]))),
        )
    interval = draw(st.integers(1, 4))
    parts = [draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))]
    freq = parts[0]
    byday = ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True)))
    weekday = draw(st.sampled_from(DAYS))
    with_days = freq == "WEEKLY" or (freq == "DAILY" and interval == 1)
    if with_days and draw(st.booleans()):
        parts.append(f"BYDAY={byday}")
    elif freq == "MONTHLY":
        parts += draw(
            st.sampled_from(
                [
                    [],
                    [f"BYMONTHDAY={day.day}"],
                    [f"BYMONTHDAY={draw(st.integers(1, 28))}"],
                    [f"BYDAY={draw(st.sampled_from(['1', '2', '3', '4', '-1']))}{weekday}"],
                    [f"BYDAY={byday}", f"BYSETPOS={draw(st.sampled_from(['1', '2', '-1']))}"],
                ]
            )
        )
    elif freq == "YEARLY":
        parts += draw(
            st.sampled_from(
                [
                    [],
                    [f"BYMONTH={day.month}"],
                    [f"BYMONTH={day.month}", f"BYMONTHDAY={draw(st.integers(1, 28))}"],
                    [f"BYMONTH={day.month}", f"BYDAY={draw(st.sampled_from(['1', '2', '-1']))}SU"],
                ]
            )
        )
    if freq == "WEEKLY" and draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 30))}")
    elif end == "until":
        limit = day + timedelta(days=draw(st.integers(0, 800)))
        parts.append(
            "UNTIL="
            + (
                limit.strftime("%Y%m%d")
                if not isinstance(start, datetime)
                else limit.strftime("%Y%m%dT235959Z")
            )
        )
    order = draw(st.permutations(parts[1:]))
    return ";".join([f"FREQ={freq}", *order]), start


def expand(rule: str, start: When) -> list[datetime]:
    """Occurrences over two years by dateutil (the oracle)."""
    anchor = start if isinstance(start, datetime) else datetime.combine(start, time())
    return list(
        rrulestr(rule, dtstart=anchor).between(anchor, anchor + timedelta(days=730), inc=True)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_dingtalk_mapping_keeps_occurrences(case: tuple[str, When]) -> None:
    """Random representable RRULE → DingTalk → RRULE expands to the same two years."""
    rule, start = case
    back = dingtalk_to_rrule(rrule_to_dingtalk(rule, start), start)
    assert expand(back, start) == expand(rule, start)
    assert back == canonical_rrule(rule, start)


@st.composite
def wider_rules(draw: st.DrawFn) -> tuple[str, When]:
    """Representable rules plus parts DingTalk lacks (several month days, BYMONTH lists...)."""
    rule, start = draw(rules())
    extra = draw(
        st.sampled_from(
            ["", ";BYMONTHDAY=1,15", ";BYMONTH=1,6", ";WKST=SU", ";BYSETPOS=1", ";BYDAY=MO,FR"]
        )
    )
    if extra and extra.split("=")[0][1:] in rule:
        extra = ""
    return rule + extra, start


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wider_rules())
def test_canonical_form_keeps_occurrences(case: tuple[str, When]) -> None:
    """canonical_rrule never changes the meaning: same occurrences over two years."""
    rule, start = case
    assert expand(canonical_rrule(rule, start), start) == expand(rule, start)
