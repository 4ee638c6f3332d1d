"""The sandbox's event API over plain HTTP: shapes, visibility, deletes, paging, sync tokens."""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi as Api
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.sandbox import timed_event as timed


async def test_create_returns_documented_shape(api: Api) -> None:
    """CreateEvent answers id, organizer(self), attendees with self flags, string minutes."""
    ev = await api.create(
        "u-alice",
        timed(
            "Weekly",
            attendees=[{"id": "u-bob", "isOptional": True}],
            reminders=[{"method": "dingtalk", "minutes": 30}],
        ),
    )
    assert ev["organizer"] == {
        "id": "u-alice",
        "displayName": "Alice",
        "responseStatus": "accepted",
        "self": True,
    }
    assert ev["attendees"] == [
        {
            "id": "u-bob",
            "displayName": "Bob",
            "responseStatus": "needsAction",
            "self": False,
            "isOptional": True,
        }
    ]
    assert ev["reminders"] == [{"method": "dingtalk", "minutes": "30"}]
    assert ev["start"] == {"dateTime": "2025-09-20T10:00:00+08:00", "timeZone": "Asia/Shanghai"}
    assert ev["createTime"].endswith("Z")
    assert "status" not in ev


async def test_event_is_in_every_attendee_calendar_under_one_id(api: Api) -> None:
    """The same id is readable from the organizer's and each attendee's calendar."""
    ev = await api.create("u-alice", timed("Shared", attendees=[{"id": "u-bob"}]))
    status, seen = await api.call("GET", api.events("u-bob", f"/{ev['id']}"))
    assert status == 200
    assert seen["id"] == ev["id"]
    assert seen["attendees"][0]["self"] is True
    assert seen["organizer"]["self"] is False
    status, err = await api.call("GET", api.events("u-carol", f"/{ev['id']}"))
    assert status == 404
    assert err["code"] == "instanceNotExist"


async def test_default_reminders_and_explicit_empty(api: Api) -> None:
    """Omitted reminders default to 15 min (all-day 900); an empty list means none."""
    a = await api.create("u-alice", timed("Default"))
    b = await api.create("u-alice", timed("None", reminders=[]))
    c = await api.create(
        "u-alice",
        {
            "summary": "Day",
            "isAllDay": True,
            "start": {"date": "2025-06-01"},
            "end": {"date": "2025-06-02"},
        },
    )
    assert a["reminders"] == [{"method": "dingtalk", "minutes": "15"}]
    assert b["reminders"] == []
    assert c["reminders"] == [{"method": "dingtalk", "minutes": "900"}]
    assert c["start"] == {"date": "2025-06-01"}


async def test_delete_leaves_cancelled_tombstone(api: Api) -> None:
    """Deleted: GetEvent 404 instanceNotExist, hidden by default, cancelled with showDeleted."""
    ev = await api.create("u-alice", timed("Doomed"))
    status, _ = await api.call("DELETE", api.events("u-alice", f"/{ev['id']}"))
    assert status == 200
    status, err = await api.call("GET", api.events("u-alice", f"/{ev['id']}"))
    assert (status, err["code"]) == (404, "instanceNotExist")
    live, _ = await api.list_all("u-alice")
    assert live == []
    shown, _ = await api.list_all("u-alice", showDeleted="True")
    assert [(e["id"], e["status"]) for e in shown] == [(ev["id"], "cancelled")]


async def test_paging_with_next_token_and_sync_token_on_last_page(api: Api) -> None:
    """maxResults pages through every event once; only the last page carries syncToken."""
    ids = [(await api.create("u-alice", timed(f"E{i}", day=1 + i)))["id"] for i in range(7)]
    status, first = await api.call("GET", api.events("u-alice"), params={"maxResults": "3"})
    assert status == 200
    assert "syncToken" not in first
    assert first["nextToken"]
    events, sync = await api.list_all("u-alice", maxResults="3")
    assert [e["id"] for e in events] == ids
    assert sync


async def test_sync_token_delta_has_changes_and_deletions(api: Api) -> None:
    """After a full list, the delta holds exactly the changed, created and deleted events."""
    keep = await api.create("u-alice", timed("Keep", day=1))
    change = await api.create("u-alice", timed("Change", day=2))
    drop = await api.create("u-alice", timed("Drop", day=3))
    _, sync = await api.list_all("u-alice")
    await api.call(
        "PUT",
        api.events("u-alice", f"/{change['id']}"),
        json={"id": change["id"], "summary": "Changed"},
    )
    await api.call("DELETE", api.events("u-alice", f"/{drop['id']}"))
    new = await api.create("u-alice", timed("New", day=4))
    delta, sync2 = await api.list_all("u-alice", syncToken=sync)
    got = {e["id"]: (e["summary"], e["status"]) for e in delta}
    assert got == {
        change["id"]: ("Changed", "confirmed"),
        drop["id"]: ("Drop", "cancelled"),
        new["id"]: ("New", "confirmed"),
    }
    assert keep["id"] not in got
    empty, _ = await api.list_all("u-alice", syncToken=sync2)
    assert empty == []


async def test_stale_sync_token_is_400_with_code(api: Api, sandbox: SandboxHandle) -> None:
    """An expired or unknown syncToken answers 400 invalidParameter.syncToken."""
    await api.create("u-alice", timed("A"))
    _, sync = await api.list_all("u-alice")
    sandbox.sandbox.expire_sync_tokens()
    status, err = await api.call("GET", api.events("u-alice"), params={"syncToken": sync})
    assert (status, err["code"]) == (400, "invalidParameter.syncToken")
    status, err = await api.call("GET", api.events("u-alice"), params={"syncToken": "bogus"})
    assert status == 400


async def test_patch_is_partial_and_bumps_update_time(api: Api) -> None:
    """PUT changes only the given fields; updateTime moves forward, createTime stays."""
    ev = await api.create("u-alice", timed("Before", description="keep me"))
    status, out = await api.call(
        "PUT", api.events("u-alice", f"/{ev['id']}"), json={"id": ev["id"], "summary": "After"}
    )
    assert status == 200
    assert out["summary"] == "After"
    assert out["description"] == "keep me"
    assert out["updateTime"] > ev["updateTime"]
    assert out["createTime"] == ev["createTime"]
