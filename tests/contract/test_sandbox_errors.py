"""The sandbox's errors: auth, validation, limits, throttling, injected faults, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fixtures.sandbox import SandboxApi as Api
from tests.fixtures.sandbox import SandboxHandle, sandbox_token, start_sandbox
from tests.fixtures.sandbox import timed_event as timed


def assert_error(status: int, body: Any, want_status: int, want_code: str) -> None:
    """A DingTalk error body with the given status and code (and a request id)."""
    assert (status, body["code"]) == (want_status, want_code)
    assert body["message"]
    assert body["requestid"]


async def test_missing_token_header(api: Api) -> None:
    """No token header → 400 AuthenticationFailed.MissingParameter."""
    async with api.s.get(api.h.calendar_url("u-alice")) as resp:
        assert_error(resp.status, await resp.json(), 400, "AuthenticationFailed.MissingParameter")


async def test_unknown_token(api: Api) -> None:
    """An unknown token → 400 InvalidAuthentication."""
    api.token = "not-a-token"
    status, body = await api.call("GET", api.events("u-alice"))
    assert_error(status, body, 400, "InvalidAuthentication")


async def test_token_expires_after_ttl() -> None:
    """A token is refused once its lifetime is over; a new one works."""
    async with start_sandbox(token_ttl=1) as handle, aiohttp.ClientSession() as session:
        api = Api(handle, session, await sandbox_token(handle))
        status, _ = await api.call("GET", api.events("u-alice"))
        assert status == 200
        await asyncio.sleep(1.1)
        status, body = await api.call("GET", api.events("u-alice"))
        assert_error(status, body, 400, "InvalidAuthentication")
        api.token = await sandbox_token(handle)
        status, _ = await api.call("GET", api.events("u-alice"))
        assert status == 200


async def test_expire_access_tokens_hook(api: Api, sandbox: SandboxHandle) -> None:
    """Sandbox.expire_access_tokens invalidates every issued token at once."""
    sandbox.sandbox.expire_access_tokens()
    status, body = await api.call("GET", api.events("u-alice"))
    assert_error(status, body, 400, "InvalidAuthentication")


async def test_bad_secret(sandbox: SandboxHandle) -> None:
    """A wrong appSecret → 400 invalidClientIdOrSecret."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{sandbox.url}/v1.0/oauth2/accessToken",
            json={"appKey": sandbox.app_key, "appSecret": "nope"},
        ) as resp,
    ):
        assert_error(resp.status, await resp.json(), 400, "invalidClientIdOrSecret")


BAD_BODIES = [
    ({"summary": "x" * 2049}, "invalidParameter.summary"),
    ({"description": "x" * 5001}, "invalidParameter.description"),
    ({"attendees": [{"id": f"u-{i}"} for i in range(501)]}, "invalidParameter.attendees"),
    (
        {"end": {"dateTime": "2025-09-20T09:00:00+08:00", "timeZone": "Asia/Shanghai"}},
        "invalidParameter.end",
    ),
    ({"end": {"dateTime": "2025-09-20T11:00:00+08:00", "timeZone": "UTC"}}, "invalidParameter.end"),
    (
        {"start": {"dateTime": "yesterday", "timeZone": "Asia/Shanghai"}},
        "InvalidParameter.ParsedISO8601TimestampError",
    ),
    (
        {
            "start": {"dateTime": "2025-09-20T10:00:00", "timeZone": "Mars/Base"},
            "end": {"dateTime": "2025-09-20T11:00:00", "timeZone": "Mars/Base"},
        },
        "invalidParameter.start.timeZone",
    ),
    ({"isAllDay": True}, "invalidParameter.start"),
    ({"start": {"date": "2025-09-20"}, "end": {"date": "2025-09-21"}}, "invalidParameter.start"),
    ({"recurrence": {"pattern": {"type": "hourly"}}}, "invalidParameter.recurrence"),
    ({"recurrence": {"pattern": {"type": "weekly"}}}, "invalidParameter.recurrence"),
    ({"reminders": [{"method": "dingtalk", "minutes": "soon"}]}, "invalidParameter.reminders"),
    ({"summary": None}, "invalidParameter.summary"),
]


@pytest.mark.parametrize(("override", "code"), BAD_BODIES)
async def test_create_validation(api: Api, override: dict[str, Any], code: str) -> None:
    """Invalid create bodies → 400 with a field-specific code, and nothing is created."""
    body = {**timed("ok"), **override}
    if override.get("summary", "") is None:
        del body["summary"]
    status, err = await api.call("POST", api.events("u-alice"), json=body)
    assert_error(status, err, 400, code)
    assert api.h.sandbox.events_of("u-alice", include_deleted=True) == []


async def test_unknown_fields_are_ignored(api: Api) -> None:
    """Fields DingTalk does not know are ignored; extra is accepted and never returned."""
    ev = await api.create(
        "u-alice", timed("ok", colour="red", extra={"noPushNotification": "true"})
    )
    assert "colour" not in ev
    assert "extra" not in ev


async def test_attendee_cap_per_event(api: Api) -> None:
    """An event holds at most 5000 attendees: the call that would exceed it is refused."""
    ev = await api.create("u-alice", timed("big"))
    url = api.events("u-alice", f"/{ev['id']}/attendees")
    for batch in range(10):
        people = [{"id": f"u-{batch}-{i}"} for i in range(500)]
        status, _ = await api.call("POST", url, json={"attendeesToAdd": people})
        assert status == 200
    status, err = await api.call("POST", url, json={"attendeesToAdd": [{"id": "u-one-more"}]})
    assert_error(status, err, 400, "invalidParameter.attendeesExceedLimit")
    status, got = await api.call(
        "GET", api.events("u-alice", f"/{ev['id']}"), params={"maxAttendees": "500"}
    )
    assert len(got["attendees"]) == 500


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"maxResults": "101"}, "invalidParameter.maxResults"),
        ({"maxResults": "ten"}, "invalidParameter.maxResults"),
        ({"showDeleted": "maybe"}, "invalidParameter.showDeleted"),
        (
            {"timeMin": "2025-01-01T00:00:00Z", "timeMax": "2026-06-01T00:00:00Z"},
            "invalidParameter.timeMax",
        ),
        ({"timeMin": "garbage"}, "InvalidParameter.ParsedISO8601TimestampError"),
        ({"nextToken": "nope"}, "invalidParameter.nextToken"),
    ],
)
async def test_list_parameter_errors(api: Api, params: dict[str, str], code: str) -> None:
    """Bad ListEvents parameters → 400 with a code."""
    status, err = await api.call("GET", api.events("u-alice"), params=params)
    assert_error(status, err, 400, code)


@pytest.mark.parametrize("value", ["True", "true", "TRUE"])
async def test_boolean_query_any_case(api: Api, value: str) -> None:
    """showDeleted accepts Python's True as well as true."""
    ev = await api.create("u-alice", timed("gone"))
    await api.call("DELETE", api.events("u-alice", f"/{ev['id']}"))
    status, body = await api.call("GET", api.events("u-alice"), params={"showDeleted": value})
    assert status == 200
    assert [e["status"] for e in body["events"]] == ["cancelled"]


async def test_time_window_bounds_start(api: Api) -> None:
    """timeMin/timeMax select events by start time in [timeMin, timeMax)."""
    early = await api.create("u-alice", timed("early", day=1))
    late = await api.create("u-alice", timed("late", day=25))
    _, body = await api.call(
        "GET",
        api.events("u-alice"),
        params={"timeMin": "2025-09-10T00:00:00.000Z", "timeMax": "2025-09-30T00:00:00.000Z"},
    )
    assert [e["id"] for e in body["events"]] == [late["id"]]
    assert early["id"] != late["id"]


async def test_only_organizer_patches(api: Api) -> None:
    """An attendee's PUT → 403 forbidden.noPermission, and the event is unchanged."""
    ev = await api.create("u-alice", timed("mine", attendees=[{"id": "u-bob"}]))
    status, err = await api.call(
        "PUT", api.events("u-bob", f"/{ev['id']}"), json={"id": ev["id"], "summary": "hijack"}
    )
    assert_error(status, err, 403, "forbidden.noPermission")
    _, now = await api.call("GET", api.events("u-alice", f"/{ev['id']}"))
    assert now["summary"] == "mine"


async def test_patch_requires_matching_id(api: Api) -> None:
    """PUT without body id (or another id) → 400 invalidParameter.id."""
    ev = await api.create("u-alice", timed("x"))
    status, err = await api.call(
        "PUT", api.events("u-alice", f"/{ev['id']}"), json={"summary": "y"}
    )
    assert_error(status, err, 400, "invalidParameter.id")


async def test_only_primary_calendar(api: Api) -> None:
    """calendarId other than primary → 400 invalidParameter.calendarId."""
    path = "/v1.0/calendar/users/u-alice/calendars/other/events"
    status, err = await api.call("GET", path)
    assert_error(status, err, 400, "invalidParameter.calendarId")


async def test_throttling_is_403(api: Api, sandbox: SandboxHandle) -> None:
    """throttle_rate 1 → every call answers 403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi."""
    sandbox.sandbox.set_faults(throttle_rate=1.0)
    status, err = await api.call("GET", api.events("u-alice"))
    assert_error(status, err, 403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")


async def test_qps_limit(api: Api, sandbox: SandboxHandle) -> None:
    """With qps_limit 3, the fourth call in one second per operation is throttled."""
    sandbox.sandbox.set_faults(qps_limit=3)
    statuses = [(await api.call("GET", api.events("u-alice")))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 403]
    status, _ = await api.call("POST", api.events("u-alice"), json=timed("other op"))
    assert status == 200


async def test_error_500_changes_nothing(api: Api, sandbox: SandboxHandle) -> None:
    """Injected 500 InternalError happens before the operation: nothing is created."""
    sandbox.sandbox.set_faults(error_rate=1.0, error_status=500)
    status, err = await api.call("POST", api.events("u-alice"), json=timed("x"))
    assert_error(status, err, 500, "InternalError")
    assert sandbox.sandbox.events_of("u-alice") == []


async def test_504_then_retry_with_client_token_creates_once(
    api: Api, sandbox: SandboxHandle
) -> None:
    """A 504 after the create ran; retrying with the same x-client-token returns that event."""
    sandbox.sandbox.set_faults(error_rate=1.0, error_status=504)
    headers = {"x-client-token": "create-1"}
    status, err = await api.call("POST", api.events("u-alice"), json=timed("x"), headers=headers)
    assert_error(status, err, 504, "GatewayTimeout")
    assert len(sandbox.sandbox.events_of("u-alice")) == 1
    sandbox.sandbox.set_faults(error_rate=0.0)
    status, ev = await api.call("POST", api.events("u-alice"), json=timed("x"), headers=headers)
    assert status == 200
    assert [e["id"] for e in sandbox.sandbox.events_of("u-alice")] == [ev["id"]]


async def test_client_token_replays_without_second_change(api: Api, sandbox: SandboxHandle) -> None:
    """Same x-client-token + same request → same answer, one event, updateTime unchanged."""
    headers = {"x-client-token": "tok-1"}
    first = await api.create("u-alice", timed("once"), headers=headers)
    second = await api.create("u-alice", timed("once"), headers=headers)
    assert first == second
    assert len(sandbox.sandbox.events_of("u-alice")) == 1
    assert sandbox.sandbox.stats()["requests"]["CreateEvent"] == 2


async def test_client_token_reused_for_other_request_is_409(api: Api) -> None:
    """The same x-client-token on a different request → 409 invalidRequest.duplicateClientToken."""
    headers = {"x-client-token": "tok-2"}
    await api.create("u-alice", timed("one"), headers=headers)
    status, err = await api.call("POST", api.events("u-alice"), json=timed("two"), headers=headers)
    assert_error(status, err, 409, "invalidRequest.duplicateClientToken")


async def test_fault_rates_are_deterministic(api: Api, sandbox: SandboxHandle) -> None:
    """The same seed gives the same sequence of injected failures."""

    async def run() -> list[int]:
        sandbox.sandbox.set_faults(error_rate=0.5, error_status=500, seed=42)
        return [(await api.call("GET", api.events("u-alice")))[0] for _ in range(12)]

    first, second = await run(), await run()
    assert first == second
    assert set(first) == {200, 500}


async def test_unknown_api_path_is_json_404(api: Api) -> None:
    """A path DingTalk does not have answers a JSON error body, not plain text."""
    status, err = await api.call("GET", "/v1.0/calendar/users/u-alice/nothingHere")
    assert_error(status, err, 404, "InvalidAction.NotFound")


async def test_body_must_be_a_json_object(api: Api) -> None:
    """A JSON array or broken JSON as the body → 400 invalidParameter.body."""
    status, err = await api.call("POST", api.events("u-alice"), json=[1, 2])
    assert_error(status, err, 400, "invalidParameter.body")
    hdrs = {"x-acs-dingtalk-access-token": api.token, "content-type": "application/json"}
    async with api.s.post(api.h.url + api.events("u-alice"), data=b"{nope", headers=hdrs) as r:
        assert_error(r.status, await r.json(), 400, "invalidParameter.body")
