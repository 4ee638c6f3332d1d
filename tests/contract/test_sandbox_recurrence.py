"""Recurring series in the sandbox: occurrences, exceptions, eventsview, deletes, DST."""

from __future__ import annotations

from typing import Any

from tests.fixtures.sandbox import SandboxApi as Api
from tests.fixtures.sandbox import timed_event as timed

WEEKLY_MONDAY_X4 = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": "monday"},
    "range": {"type": "numbered", "numberOfOccurrences": 4},
}
SEPTEMBER = {"timeMin": "2025-09-01T00:00:00Z", "timeMax": "2025-10-01T00:00:00Z"}


async def series(api: Api, **extra: Any) -> dict[str, Any]:
    """Mondays 2025-09-01..22 10:00 Shanghai, with bob invited."""
    body = timed("Standup", day=1, recurrence=WEEKLY_MONDAY_X4, attendees=[{"id": "u-bob"}])
    return await api.create("u-alice", {**body, **extra})


async def instances(api: Api, master_id: str, user: str = "u-alice") -> list[dict[str, Any]]:
    """Every instance of a series in September 2025."""
    status, body = await api.call(
        "GET", api.events(user, f"/{master_id}/instances"), params=SEPTEMBER
    )
    assert status == 200, body
    return list(body["events"])


async def test_instances_have_ids_origin_and_master(api: Api) -> None:
    """ListInstances gives 4 occurrences with <master>_<UTC start> ids and originStart."""
    master = await series(api)
    got = await instances(api, master["id"])
    assert [e["id"] for e in got] == [
        f"{master['id']}_2025090{d}T020000Z" if d < 10 else f"{master['id']}_202509{d}T020000Z"
        for d in (1, 8, 15, 22)
    ]
    assert [e["originStart"]["dateTime"] for e in got][1] == "2025-09-08T02:00:00Z"
    assert {e["seriesMasterId"] for e in got} == {master["id"]}
    assert got[2]["start"] == {"dateTime": "2025-09-15T10:00:00+08:00", "timeZone": "Asia/Shanghai"}
    assert "recurrence" not in got[0]


async def test_get_virtual_instance_and_non_occurrence(api: Api) -> None:
    """GetEvent works on an unmaterialised occurrence id; a non-occurrence id is 404."""
    master = await series(api)
    status, one = await api.call("GET", api.events("u-bob", f"/{master['id']}_20250915T020000Z"))
    assert status == 200
    assert one["seriesMasterId"] == master["id"]
    assert one["attendees"][0]["self"] is True
    status, err = await api.call("GET", api.events("u-bob", f"/{master['id']}_20250916T020000Z"))
    assert (status, err["code"]) == (404, "instanceNotExist")


async def test_moved_occurrence_becomes_exception(api: Api) -> None:
    """PUT on an occurrence id materialises an exception listed next to its master."""
    master = await series(api)
    occ = f"{master['id']}_20250908T020000Z"
    moved = {
        "id": occ,
        "start": {"dateTime": "2025-09-09T15:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": "2025-09-09T16:00:00+08:00", "timeZone": "Asia/Shanghai"},
    }
    status, out = await api.call("PUT", api.events("u-alice", f"/{occ}"), json=moved)
    assert status == 200, out
    listed, _ = await api.list_all("u-bob")
    assert [(e["id"], e.get("seriesMasterId")) for e in listed] == [
        (master["id"], None),
        (occ, master["id"]),
    ]
    exception = listed[1]
    assert exception["originStart"] == {"dateTime": "2025-09-08T02:00:00Z"}
    assert exception["start"]["dateTime"] == "2025-09-09T15:00:00+08:00"
    view = await instances(api, master["id"])
    assert [e["start"]["dateTime"][:10] for e in view] == [
        "2025-09-01",
        "2025-09-09",
        "2025-09-15",
        "2025-09-22",
    ]


async def test_cancelled_occurrence(api: Api) -> None:
    """DELETE on an occurrence: a cancelled exception (listed), gone from instances and view."""
    master = await series(api)
    occ = f"{master['id']}_20250915T020000Z"
    status, _ = await api.call("DELETE", api.events("u-alice", f"/{occ}"))
    assert status == 200
    listed, _ = await api.list_all("u-alice")
    assert {e["id"]: e["status"] for e in listed} == {
        master["id"]: "confirmed",
        occ: "cancelled",
    }
    assert len(await instances(api, master["id"])) == 3
    status, view = await api.call(
        "GET", api.events("u-alice").replace("/events", "/eventsview"), params=SEPTEMBER
    )
    assert status == 200
    assert [e["start"]["dateTime"][:10] for e in view["events"]] == [
        "2025-09-01",
        "2025-09-08",
        "2025-09-22",
    ]
    assert all("reminders" not in e for e in view["events"])
    status, err = await api.call("GET", api.events("u-alice", f"/{occ}"))
    assert (status, err["code"]) == (404, "instanceNotExist")


async def test_deleting_master_cancels_exceptions(api: Api) -> None:
    """Deleting the master cancels its exceptions too; the delta reports both."""
    master = await series(api)
    occ = f"{master['id']}_20250908T020000Z"
    await api.call("PUT", api.events("u-alice", f"/{occ}"), json={"id": occ, "summary": "x"})
    _, sync = await api.list_all("u-bob")
    await api.call("DELETE", api.events("u-alice", f"/{master['id']}"))
    delta, _ = await api.list_all("u-bob", syncToken=sync)
    assert {e["id"]: e["status"] for e in delta} == {
        master["id"]: "cancelled",
        occ: "cancelled",
    }
    live, _ = await api.list_all("u-alice")
    assert live == []


async def test_events_instances_from_start_recurrence_id(api: Api) -> None:
    """ListEventsInstances with startRecurrenceId returns that occurrence and later ones."""
    master = await series(api)
    status, body = await api.call(
        "GET",
        "/v1.0/calendar/users/u-alice/calendars/primary/instances",
        params={"seriesMasterId": master["id"], "startRecurrenceId": "2025-09-15T02:00:00Z"},
    )
    assert status == 200
    assert [e["originStart"]["dateTime"] for e in body["events"]] == [
        "2025-09-15T02:00:00Z",
        "2025-09-22T02:00:00Z",
    ]


async def test_all_day_daily_series(api: Api) -> None:
    """An all-day daily series expands to dates, end date exclusive."""
    master = await api.create(
        "u-alice",
        {
            "summary": "Trip",
            "isAllDay": True,
            "start": {"date": "2025-09-10"},
            "end": {"date": "2025-09-11"},
            "recurrence": {
                "pattern": {"type": "daily", "interval": 2},
                "range": {"type": "endDate", "endDate": "2025-09-16"},
            },
        },
    )
    got = await instances(api, master["id"])
    assert [(e["start"]["date"], e["end"]["date"]) for e in got] == [
        ("2025-09-10", "2025-09-11"),
        ("2025-09-12", "2025-09-13"),
        ("2025-09-14", "2025-09-15"),
        ("2025-09-16", "2025-09-17"),
    ]


async def test_relative_monthly_last_friday(api: Api) -> None:
    """relativeMonthly with index last picks the last Friday of each month."""
    body = timed("Review", day=26)
    body["recurrence"] = {
        "pattern": {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": "friday",
            "index": "last",
        },
        "range": {"type": "numbered", "numberOfOccurrences": 3},
    }
    master = await api.create("u-alice", body)
    status, got = await api.call(
        "GET",
        api.events("u-alice", f"/{master['id']}/instances"),
        params={"timeMin": "2025-09-01T00:00:00Z", "timeMax": "2025-12-31T00:00:00Z"},
    )
    assert status == 200
    assert [e["start"]["dateTime"][:10] for e in got["events"]] == [
        "2025-09-26",
        "2025-10-31",
        "2025-11-28",
    ]


async def test_series_keeps_wall_time_across_dst(api: Api) -> None:
    """A New York weekly series stays at 10:00 local: the UTC origin moves at the DST change."""
    master = await api.create(
        "u-alice",
        {
            "summary": "NY",
            "start": {"dateTime": "2025-10-27T10:00:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2025-10-27T11:00:00", "timeZone": "America/New_York"},
            "recurrence": {
                "pattern": {"type": "weekly", "daysOfWeek": "monday"},
                "range": {"type": "numbered", "numberOfOccurrences": 2},
            },
        },
    )
    status, got = await api.call(
        "GET",
        api.events("u-alice", f"/{master['id']}/instances"),
        params={"timeMin": "2025-10-01T00:00:00Z", "timeMax": "2025-12-01T00:00:00Z"},
    )
    assert status == 200
    assert [e["originStart"]["dateTime"] for e in got["events"]] == [
        "2025-10-27T14:00:00Z",
        "2025-11-03T15:00:00Z",
    ]
    assert got["events"][1]["start"]["dateTime"] == "2025-11-03T10:00:00-05:00"


async def test_attendee_cannot_move_occurrence(api: Api) -> None:
    """An attendee's PUT on an occurrence is refused and materialises nothing."""
    master = await series(api)
    occ = f"{master['id']}_20250908T020000Z"
    status, err = await api.call("PUT", api.events("u-bob", f"/{occ}"), json={"id": occ})
    assert (status, err["code"]) == (403, "forbidden.noPermission")
    listed, _ = await api.list_all("u-alice")
    assert [e["id"] for e in listed] == [master["id"]]
