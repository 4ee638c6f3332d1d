"""The sandbox's freeBusyStatus, PatchEvent semantics for fields syncd does not map, rooms.

freeBusyStatus is accepted on create and patch (``busy``/``free`` only), stored, shown by
``GET /_sandbox/state`` and absent from every response, as the official SDK's response
models say. A PUT leaves every field it does not carry as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxApi as Api
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.sandbox import timed_event as timed

EXTRAS: dict[str, Any] = {
    "categories": [{"categoryId": "c1", "displayName": "Review"}],
    "richTextDescription": {"text": "<b>Agenda</b>"},
    "uiConfigs": [{"uiName": "comment", "uiStatus": "hide"}],
    "cardInstances": [{"outTrackId": "card-1", "scenario": "x"}],
    "freeBusyStatus": "free",
}


def _stored(sandbox: SandboxHandle, event_id: str) -> dict[str, Any]:
    data: dict[str, Any] = sandbox.sandbox.dump()["events"][event_id]["fields"]
    return data


async def test_free_busy_is_stored_never_returned(api: Api, sandbox: SandboxHandle) -> None:
    """Create with free: the state says free; create, get and list answers do not carry it."""
    ev = await api.create("u-alice", timed("Free time", freeBusyStatus="free"))
    assert "freeBusyStatus" not in ev
    status, got = await api.call("GET", api.events("u-alice", f"/{ev['id']}"))
    assert status == 200
    assert "freeBusyStatus" not in got
    listed, _ = await api.list_all("u-alice")
    assert all("freeBusyStatus" not in e for e in listed)
    assert _stored(sandbox, ev["id"])["freeBusyStatus"] == "free"


@pytest.mark.parametrize("value", ["tentative", "FREE", 1])
async def test_unknown_free_busy_values_are_rejected(api: Api, value: object) -> None:
    """Anything but busy/free is a 400 invalidParameter naming the field."""
    status, data = await api.call(
        "POST", api.events("u-alice"), json=timed("x", freeBusyStatus=value)
    )
    assert status == 400
    assert "freeBusyStatus" in data["code"]


async def test_patch_keeps_every_field_it_does_not_carry(api: Api, sandbox: SandboxHandle) -> None:
    """A PUT with only a title keeps categories, rich text, UI configs, cards, free/busy
    and the booked rooms; a PUT with freeBusyStatus busy changes just that."""
    ev = await api.create("u-alice", timed("Review", **EXTRAS))
    path = api.events("u-alice", f"/{ev['id']}")
    status, _ = await api.call(
        "POST", path + "/meetingRooms", json={"meetingRoomsToAdd": [{"roomId": "room-7"}]}
    )
    assert status == 200
    status, patched = await api.call("PUT", path, json={"id": ev["id"], "summary": "Review 2"})
    assert status == 200
    assert patched["categories"] == EXTRAS["categories"]
    assert patched["richTextDescription"] == EXTRAS["richTextDescription"]
    fields = _stored(sandbox, ev["id"])
    assert {k: fields[k] for k in EXTRAS} == EXTRAS
    status, got = await api.call("GET", path)
    assert [r["roomId"] for r in got["meetingRooms"]] == ["room-7"]
    assert got["location"]["meetingRooms"] == ["room-7"]
    status, _ = await api.call("PUT", path, json={"id": ev["id"], "freeBusyStatus": "busy"})
    assert status == 200
    assert _stored(sandbox, ev["id"])["freeBusyStatus"] == "busy"
    assert _stored(sandbox, ev["id"])["summary"] == "Review 2"


async def test_rooms_need_the_organizer_and_a_room_id(api: Api) -> None:
    """AddMeetingRooms by an attendee is 403; without rooms it is 400."""
    ev = await api.create("u-alice", timed("x", attendees=[{"id": "u-bob"}]))
    body = {"meetingRoomsToAdd": [{"roomId": "r"}]}
    status, _ = await api.call("POST", api.events("u-bob", f"/{ev['id']}/meetingRooms"), json=body)
    assert status == 403
    status, _ = await api.call("POST", api.events("u-alice", f"/{ev['id']}/meetingRooms"), json={})
    assert status == 400
