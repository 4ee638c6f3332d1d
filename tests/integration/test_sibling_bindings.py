"""Two bindings of one DingTalk user: each CalDAV calendar keeps its own events."""

from __future__ import annotations

from pathlib import Path

import icalendar

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import Config, load_config
from syncd.model import BindingRef
from tests.fixtures.caldav_servers import make_calendar
from tests.fixtures.spine import Spine, write_config

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


async def _summaries(url: str) -> list[str]:
    async with CalDAVClient(url, None, None) as client:
        items = (await client.sync(None)).items
    return sorted(
        str(ev["SUMMARY"])
        for item in items
        for ev in icalendar.Calendar.from_ical(item.text).walk("VEVENT")
    )


def _with_home(spine: Spine, tmp_path: Path, url: str, extra: str = "") -> Config:
    """The spine's config plus a second binding ``alice-home`` of u-alice to ``url``."""
    root = write_config(
        tmp_path / "two", spine.sandbox, spine.calendar.url, spine.config.settings.redis_url
    )
    tenant = root / "tenants" / "acme.yaml"
    tenant.write_text(
        tenant.read_text()
        + f'  - id: alice-home\n    dingtalk_user: u-alice\n    caldav: {{url: "{url}"}}\n'
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
    home = make_calendar(spine.calendar.dav)
    config = _with_home(spine, tmp_path, home.url)
    assert home.put_raw("party.ics", ICS.format(uid="party@home", summary="Party"))[0] in (201, 204)
    _put_work_event(spine)
    await spine.api.create(
        "u-alice",
        {
            "summary": "All hands",
            "start": {"dateTime": "2027-01-26T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
            "end": {"dateTime": "2027-01-26T11:00:00+08:00", "timeZone": "Asia/Shanghai"},
        },
    )
    await spine.sandbox.sandbox.drain()
    await _rounds(spine, config, 3)
    assert sorted(e["summary"] for e in spine.dingtalk_events()) == ["1:1", "All hands", "Party"]
    assert await _summaries(spine.calendar.url) == ["1:1", "All hands"]
    assert await _summaries(home.url) == ["All hands", "Party"]


async def test_a_mirror_binding_gets_every_event(spine: Spine, tmp_path: Path) -> None:
    """A to_caldav binding mirrors the whole DingTalk calendar, siblings' events included."""
    mirror = make_calendar(spine.calendar.dav)
    config = _with_home(spine, tmp_path, mirror.url, "    direction: to_caldav\n")
    _put_work_event(spine)
    await _rounds(spine, config, 2)
    assert await _summaries(mirror.url) == ["1:1"]
