"""DingTalkSide.update sends only what syncd maps and only what changed (sandbox).

A DingTalk event carrying fields syncd does not read (categories, rich text, UI configs,
cards, a booked room) keeps them through a syncd update; an update that changes nothing
sends no PatchEvent; free/busy is written though DingTalk never returns it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aredis
from structlog.testing import capture_logs

from syncd.adapters.dingtalk import DingTalkClient, TokenCache
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd_lab.sandbox.writer import Writer
from tests.contract.test_dingtalk_side import CTX, Bench, _no_sleep, at, meeting, only
from tests.fixtures.sandbox import SandboxHandle

EXTRAS: dict[str, Any] = {
    "categories": [{"categoryId": "c1", "displayName": "Review"}],
    "richTextDescription": {"text": "<b>Agenda</b>"},
    "uiConfigs": [{"uiName": "comment", "uiStatus": "hide"}],
    "cardInstances": [{"outTrackId": "card-1", "scenario": "x"}],
}


@pytest.fixture
async def bench(sandbox: SandboxHandle, redis_client: aredis.Redis) -> AsyncIterator[Bench]:
    """A DingTalkSide for u-alice on a fresh sandbox (as in test_dingtalk_side)."""
    async with aiohttp.ClientSession() as session:
        client = DingTalkClient(session, sandbox.url, sandbox.app_key, sandbox.app_secret,
                                TokenCache(redis_client), sleep=_no_sleep)  # fmt: skip
        await client.list_calendars("u-alice")
        yield Bench(DingTalkSide(client, "u-alice", CTX), client, sandbox)


def _fields(bench: Bench, event_id: str) -> dict[str, Any]:
    data: dict[str, Any] = bench.handle.sandbox.dump()["events"][event_id]["fields"]
    return data


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


async def _rich_event(bench: Bench) -> str:
    start = at(4)
    body = {
        "summary": "Review",
        "description": "Agenda",
        "start": {"dateTime": start.isoformat(), "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": start.replace(hour=11).isoformat(), "timeZone": "Asia/Shanghai"},
        "location": {"displayName": "Room 5"},
        **EXTRAS,
    }
    created = await bench.client.create_event("u-alice", body)
    event_id = str(created["id"])
    # The client has no rooms call; book one as AddMeetingRooms does.
    sandbox = bench.handle.sandbox
    Writer(sandbox.state, sandbox.seed).add_rooms(
        "u-alice", event_id, {"meetingRoomsToAdd": [{"roomId": "room-7"}]}
    )
    return event_id


async def test_title_update_keeps_what_syncd_does_not_map(bench: Bench) -> None:
    """A new title: GetEvent + PatchEvent with summary (and extra/freeBusyStatus) only;
    categories, rich text, UI configs, cards and the room stay; location text untouched."""
    event_id = await _rich_event(bench)
    remote = only(await bench.side.changes(None), event_id)
    assert remote.event is not None
    assert remote.event.location == "Room 5; room-7"
    before = bench.requests()
    written = await bench.side.update(
        event_id, dataclasses.replace(remote.event, summary="New"), remote.etag
    )
    assert _delta(before, bench.requests()) == {"GetEvent": 1, "PatchEvent": 1}
    fields = _fields(bench, event_id)
    assert {k: fields[k] for k in EXTRAS} == EXTRAS
    assert [r["roomId"] for r in fields["meetingRooms"]] == ["room-7"]
    assert fields["location"] == {"displayName": "Room 5"}
    assert fields["summary"] == "New"
    again = only(await bench.side.changes(None), event_id)
    assert again.event is not None
    assert again.event.fingerprint() == written.event.fingerprint()


async def test_update_that_changes_nothing_mapped_touches_nothing_else(bench: Bench) -> None:
    """The event as DingTalk holds it, sent back: one GetEvent and one PatchEvent that
    carries only freeBusyStatus (DingTalk never says what it holds there); every stored
    field stays as it was and the result reads as before."""
    event_id = await _rich_event(bench)
    remote = only(await bench.side.changes(None), event_id)
    assert remote.event is not None
    stored = dict(_fields(bench, event_id))
    before = bench.requests()
    with capture_logs() as logs:
        written = await bench.side.update(event_id, remote.event, remote.etag)
    assert _delta(before, bench.requests()) == {"GetEvent": 1, "PatchEvent": 1}
    assert _fields(bench, event_id) == {**stored, "freeBusyStatus": "busy"}
    assert written.event.fingerprint() == remote.event.fingerprint()
    assert not [e for e in logs if e["event"] == "dingtalk.rich_text_replaced"]


async def test_new_description_replaces_rich_text_with_a_log_line(bench: Bench) -> None:
    """A new description is sent with an HTML rich text of it (the old one would show stale
    text); ``dingtalk.rich_text_replaced`` says so."""
    event_id = await _rich_event(bench)
    remote = only(await bench.side.changes(None), event_id)
    assert remote.event is not None
    with capture_logs() as logs:
        await bench.side.update(
            event_id, dataclasses.replace(remote.event, description="Now <this>"), remote.etag
        )
    fields = _fields(bench, event_id)
    assert fields["description"] == "Now <this>"
    assert fields["richTextDescription"] == {"text": "Now &lt;this&gt;"}
    assert fields["categories"] == EXTRAS["categories"]
    assert [e["event"] for e in logs if e["event"].startswith("dingtalk.rich")] == [
        "dingtalk.rich_text_replaced"
    ]


async def test_free_busy_is_written_on_create_and_update(bench: Bench) -> None:
    """A free event is stored free; it reads back busy (not returned), and turning it busy
    is sent although the read already said busy."""
    written = await bench.side.create(meeting(free_busy="free"))
    assert _fields(bench, written.id)["freeBusyStatus"] == "free"
    assert written.event.free_busy == "busy"
    await bench.side.update(written.id, meeting(free_busy="busy"), written.etag)
    assert _fields(bench, written.id)["freeBusyStatus"] == "busy"
