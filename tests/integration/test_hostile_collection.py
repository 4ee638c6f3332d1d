"""A CalDAV collection holding hostile items next to normal ones still syncs the normal ones.

Each hostile resource of ``tests/fixtures/hostile.py`` that the server stores is read back
by ``CalDAVSide.changes`` as an item with its reason (so the planner leaves it alone),
and every normal item is read as usual, on every server the fixture offers.
"""

from __future__ import annotations

import re

import pytest
from structlog.testing import capture_logs

from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.dingtalk_shapes import CTX
from tests.fixtures.hostile import CASES, TIMED, vcalendar

# The cases left out make the servers themselves spend seconds to minutes on one PUT
# (Radicale indexes a rule that never occurs until the year 9999; both parse 100,000
# events; Xandikos expands COUNT=1000000000), which says nothing about syncd; and
# Radicale stores year 0000 as 2000, so that case would not reach syncd as written.
SERVED = (
    "300 KB folded value",
    "10,000 nested components",
    "daily series from year 1 with an EXDATE in 9999",
    "2,000 EXDATE lines",
    "DATE UNTIL in 9999 on a timed daily series",
    "February 30",
    "end past the year 9999",
    "VTIMEZONE with a daily rule",
    "100 VTIMEZONEs",
    "custom VTIMEZONE, 400 overrides over 8 years",
    "INTERVAL=1000000000",
)

# How many hostile items each server stores at least (the rest it refuses at PUT, which is
# fine: they never reach syncd). Cyrus 3.6 checks objects with libical: 3 stay hostile.
STORED_AT_LEAST = {"radicale": 5, "xandikos": 5, "cyrus": 3, "davical": 5}
# Cases a server accepts but stores defused, so they read back as a plain event. Cyrus
# 3.6 (seen here) keeps the VEVENT and drops the 10,000 nested components inside it.
DEFUSED = {"cyrus": {"10,000 nested components"}}


def normal(n: int) -> str:
    return (
        vcalendar(*TIMED)
        .replace("UID:hostile", f"UID:normal-{n}")
        .replace("SUMMARY:x", f"SUMMARY:n{n}")
    )


@pytest.mark.slow
async def test_hostile_items_are_reported_and_normal_ones_sync(
    caldav_calendar: CalendarHandle,
) -> None:
    """Normal items read as events; each stored hostile item reads as an error with its reason."""
    stored: dict[str, str] = {}  # href -> the reason it must be refused with ("": read)
    for n in range(3):
        status, _ = caldav_calendar.put_raw(f"normal-{n}.ics", normal(n))
        assert status in (200, 201, 204)
    for i, case in enumerate(c for c in CASES if c.name in SERVED):
        text = case.build().replace("UID:hostile", f"UID:hostile-{i}")
        status, href = caldav_calendar.put_raw(f"hostile-{i}.ics", text)
        if status in (200, 201, 204):
            defused = case.name in DEFUSED.get(caldav_calendar.server, set())
            stored[href] = "" if defused else case.reason
    at_least = STORED_AT_LEAST[caldav_calendar.server]
    assert len([r for r in stored.values() if r]) >= at_least, stored
    cal = caldav_calendar
    async with CalDAVClient(cal.url, cal.username, cal.password) as dav:
        with capture_logs() as logs:
            listing = await CalDAVSide(dav, CTX).changes(None)
    items = {r.id: r for r in listing.items}
    events = sorted(r.event.summary for r in items.values() if r.event is not None)
    assert events == ["n0", "n1", "n2", *(["x"] * len([r for r in stored.values() if not r]))]
    refused = {href: reason for href, reason in stored.items() if reason}
    for href, reason in refused.items():
        assert items[href].event is None
        assert items[href].error is not None
        assert re.search(reason, items[href].error), items[href].error
    skipped = {e["href"] for e in logs if e["event"] == "caldav_item_untranslatable"}
    assert skipped == set(refused)
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
