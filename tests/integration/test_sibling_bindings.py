"""Two bindings of one DingTalk user: each CalDAV calendar keeps its own events.

Both bindings mirror the user's DingTalk events, so the same UID lands in both CalDAV
calendars. Cyrus keeps a UID in one calendar per account, so there the second calendar
belongs to a second account; ``test_one_cyrus_account_holds_a_uid_once`` shows what
happens when both calendars are of one Cyrus account.
"""

from __future__ import annotations

from pathlib import Path

import icalendar
import pytest
import structlog.testing

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd_lab.stack.cyrus import SECOND_USER
from tests.fixtures.caldav_servers import CalendarHandle, make_calendar
from tests.fixtures.spine import Spine, caldav_yaml, write_config

WORK = BindingRef("acme", "alice-work")
HOME = BindingRef("acme", "alice-home")

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20250101T000000Z\r
DTSTART;TZID=Europe/Berlin:20270125T091500\r
DTEND;TZID=Europe/Berlin:20270125T093000\r
SUMMARY:{summary}\r
END:VEVENT\r
END:VCALENDAR\r
"""

ALL_HANDS = {
    "summary": "All hands",
    "start": {"dateTime": "2027-01-26T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
    "end": {"dateTime": "2027-01-26T11:00:00+08:00", "timeZone": "Asia/Shanghai"},
}


async def _summaries(cal: CalendarHandle) -> list[str]:
    async with CalDAVClient(cal.url, cal.username, cal.password) as client:
        items = (await client.sync(None)).items
    return sorted(
        str(ev["SUMMARY"])
        for item in items
        for ev in icalendar.Calendar.from_ical(item.text).walk("VEVENT")
    )


def _sibling_calendar(spine: Spine) -> CalendarHandle:
    """A second calendar on the spine's server (of a second account on Cyrus)."""
    dav = spine.calendar.dav
    return make_calendar(dav, user=SECOND_USER if dav.name == "cyrus" else None)


def _with_home(spine: Spine, tmp_path: Path, home: CalendarHandle, extra: str = "") -> Config:
    """The spine's config plus a second binding ``alice-home`` of u-alice to ``home``."""
    cal = spine.calendar
    redis_url = spine.config.settings.redis_url
    root = write_config(tmp_path / "two", spine.sandbox, cal.url, redis_url, auth=cal.auth)
    tenant = root / "tenants" / "acme.yaml"
    tenant.write_text(
        tenant.read_text()
        + "  - id: alice-home\n    dingtalk_user: u-alice\n"
        + f"    caldav: {caldav_yaml(home.url, home.auth)}\n"
        + extra
    )
    return load_config(root, {})


async def _rounds(spine: Spine, config: Config, rounds: int) -> None:
    """Reconcile both bindings ``rounds`` times, as successive polls would."""
    for _ in range(rounds):
        for ref in (WORK, HOME):
            await queue.request_reconcile(spine.pool, ref, "poll")
        await spine.run_worker(config)


def _put_work_event(spine: Spine) -> None:
    status, _ = spine.calendar.put_raw("1on1.ics", ICS.format(uid="1on1@work", summary="1:1"))
    assert status in (201, 204)


async def test_each_calendar_keeps_its_own_events(spine: Spine, tmp_path: Path) -> None:
    """An event from the home calendar reaches DingTalk but never the work calendar."""
    home = _sibling_calendar(spine)
    config = _with_home(spine, tmp_path, home)
    assert home.put_raw("party.ics", ICS.format(uid="party@home", summary="Party"))[0] in (201, 204)
    _put_work_event(spine)
    await spine.api.create("u-alice", ALL_HANDS)
    await spine.sandbox.sandbox.drain()
    await _rounds(spine, config, 3)
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == ["1:1", "All hands", "Party"]
    assert await _summaries(spine.calendar) == ["1:1", "All hands"]
    assert await _summaries(home) == ["All hands", "Party"]


async def test_a_mirror_binding_gets_every_event(spine: Spine, tmp_path: Path) -> None:
    """A to_caldav binding mirrors the whole DingTalk calendar, siblings' events included."""
    mirror = _sibling_calendar(spine)
    config = _with_home(spine, tmp_path, mirror, "    direction: to_caldav\n")
    _put_work_event(spine)
    await _rounds(spine, config, 2)
    assert await _summaries(mirror) == ["1:1"]


@pytest.mark.parametrize("caldav_calendar", ["cyrus"], indirect=True)
async def test_one_cyrus_account_holds_a_uid_once(spine: Spine, tmp_path: Path) -> None:
    """Siblings on one Cyrus account: the second copy of a UID is refused, with the reason.

    Cyrus 3.6 answers 403 <C:unique-scheduling-object-resource> when a UID already lives
    in another calendar of the account. That copy becomes a dead letter naming why, and
    everything else still syncs.
    """
    home = make_calendar(spine.calendar.dav)  # the same account as the work calendar
    config = _with_home(spine, tmp_path, home)
    assert home.put_raw("party.ics", ICS.format(uid="party@home", summary="Party"))[0] == 201
    _put_work_event(spine)
    await spine.api.create("u-alice", ALL_HANDS)
    await spine.sandbox.sandbox.drain()
    with structlog.testing.capture_logs() as logs:
        await _rounds(spine, config, 2)
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == ["1:1", "All hands", "Party"]
    work, other = await _summaries(spine.calendar), await _summaries(home)
    assert sorted([*work, *other]) == ["1:1", "All hands", "Party"]  # "All hands" in one only
    refused = [e for e in logs if e["event"] == "action_failed"]
    assert refused
    assert {e["disposition"] for e in refused} == {"dead_letter"}
    assert all("another calendar of this account" in e["message"] for e in refused)
