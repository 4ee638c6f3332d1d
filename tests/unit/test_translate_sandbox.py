"""A real DingTalk round trip through the sandbox: body → stored → GetEvent/ListEvents → Event.

The sandbox (tests/fixtures/sandbox.py) answers in DingTalk's response shape; exceptions
are written the way the adapter will write them: PUT the instance ``<master>_<originStart>``
with its body, DELETE it to cancel the occurrence.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from syncd.model import Attendee, Event, Recurrence, When
from syncd.translate import (
    as_dingtalk_keeps,
    canonical_rrule,
)
from tests.fixtures.dingtalk_side import CTX, sandbox_read, sandbox_write
from tests.fixtures.sandbox import SandboxApi

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
BOB = Attendee("bob@acme.example", "Bob", optional=True)
CAROL = Attendee("carol@acme.example", "Carol")


def _series(start: When, end: When, rule: str, **kw: Any) -> Event:
    base = Event(uid="x", summary="Series", start=start, end=end, organizer="alice@acme.example")
    return dataclasses.replace(base, recurrence=Recurrence(canonical_rrule(rule, start)), **kw)


def _moved(event: Event, rid: When, shift: timedelta, summary: str) -> Event:
    return dataclasses.replace(
        event,
        summary=summary,
        start=rid + shift,
        end=rid + shift + (event.end - event.start),  # type: ignore[operator]
        recurrence=None,
        recurrence_id=rid,
    )


def _cases() -> list[Event]:
    weekly_start = datetime(2025, 9, 20, 10, tzinfo=SH)
    weekly = _series(
        weekly_start,
        weekly_start + timedelta(hours=1),
        "FREQ=WEEKLY;COUNT=6",
        description="Agenda\nline 2",
        location="3F",
        attendees=(BOB, CAROL),
        reminders=(5, 15),
        online_meeting_url="https://zoom.us/j/123",
    )
    rid = weekly_start + timedelta(weeks=2)
    weekly = dataclasses.replace(
        weekly,
        recurrence=Recurrence(weekly.recurrence.rrule, (weekly_start + timedelta(weeks=1),)),  # type: ignore[union-attr]
        overrides=(_moved(weekly, rid, timedelta(hours=4), "moved"),),
    )
    ny = datetime(2025, 1, 31, 9, 30, tzinfo=NY)
    monthly = _series(ny, ny + timedelta(minutes=45), "FREQ=MONTHLY;BYDAY=-1FR", attendees=(CAROL,))
    daily = _series(date(2025, 3, 1), date(2025, 3, 2), "FREQ=DAILY;UNTIL=20250310")
    daily = dataclasses.replace(
        daily, recurrence=Recurrence(daily.recurrence.rrule, (date(2025, 3, 4),))
    )  # type: ignore[union-attr]
    trip = Event(
        uid="t",
        summary="Trip; day 1, \\ 2",
        start=date(2025, 5, 1),
        end=date(2025, 5, 4),
        location="Hangzhou",
        organizer="alice@acme.example",
    )
    utc = datetime(2025, 6, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    late = Event(
        uid="u",
        summary="UTC call",
        start=utc,
        end=utc + timedelta(hours=2),
        reminders=(0,),
        organizer="alice@acme.example",
    )
    return [weekly, monthly, daily, trip, late]


@pytest.mark.parametrize("index", range(len(_cases())))
async def test_sandbox_round_trip_keeps_fingerprint(sandbox_api: SandboxApi, index: int) -> None:
    """What we write to the sandbox reads back with the fingerprint as_dingtalk_keeps predicts."""
    event = _cases()[index]
    back = await sandbox_read(sandbox_api, await sandbox_write(sandbox_api, event))
    expected = as_dingtalk_keeps(event, CTX)
    assert back.fingerprint() == expected.fingerprint(), (back, expected)
    assert back.fingerprint() == event.fingerprint()  # nothing in these cases is lossy
