"""Conformance: the official DingTalk SDK works unchanged against the sandbox.

The SDK is synchronous, so each scenario runs in a worker thread while the sandbox serves
on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from alibabacloud_dingtalk.calendar_1_0 import client as cal_client
from alibabacloud_dingtalk.calendar_1_0 import models as cm
from alibabacloud_dingtalk.event_1_0 import client as event_client
from alibabacloud_dingtalk.event_1_0 import models as em
from alibabacloud_dingtalk.oauth2_1_0 import client as oauth_client
from alibabacloud_dingtalk.oauth2_1_0 import models as om
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from tests.fixtures.sandbox import SandboxHandle

T = TypeVar("T")
TZ = "Asia/Shanghai"


class Sdk:
    """The official clients pointed at the sandbox, with a token (use from a thread)."""

    def __init__(self, handle: SandboxHandle) -> None:
        config = open_api_models.Config(protocol="http", endpoint=handle.endpoint)
        self.oauth = oauth_client.Client(config)
        self.cal = cal_client.Client(config)
        self.events = event_client.Client(config)
        self.rt = util_models.RuntimeOptions()
        self.handle = handle
        request = om.GetAccessTokenRequest(app_key=handle.app_key, app_secret=handle.app_secret)
        self.token = self.oauth.get_access_token(request).body.access_token

    def h(self, headers_cls: Callable[..., T], **kw: Any) -> T:
        """Headers of the given SDK class carrying the access token."""
        return headers_cls(x_acs_dingtalk_access_token=self.token, **kw)

    def create(self, user: str, request: cm.CreateEventRequest, **kw: Any) -> Any:
        headers = self.h(cm.CreateEventHeaders, **kw)
        return self.cal.create_event_with_options(user, "primary", request, headers, self.rt).body

    def get(self, user: str, event_id: str) -> Any:
        return self.cal.get_event_with_options(
            user, "primary", event_id, cm.GetEventRequest(), self.h(cm.GetEventHeaders), self.rt
        ).body

    def list(self, user: str, request: cm.ListEventsRequest) -> Any:
        return self.cal.list_events_with_options(
            user, "primary", request, self.h(cm.ListEventsHeaders), self.rt
        ).body

    def list_all(self, user: str, **kw: Any) -> tuple[list[Any], str]:
        """Follow nextToken to the end; return the events and the final syncToken."""
        events: list[Any] = []
        next_token = None
        while True:
            body = self.list(user, cm.ListEventsRequest(next_token=next_token, **kw))
            events += body.events or []
            if not body.next_token:
                return events, body.sync_token
            next_token = body.next_token
            kw.pop("sync_token", None)


def timed(summary: str, day: int, **kw: Any) -> cm.CreateEventRequest:
    """A one-hour timed CreateEventRequest on 2025-09-<day> 10:00 Shanghai time."""
    return cm.CreateEventRequest(
        summary=summary,
        start=cm.CreateEventRequestStart(
            date_time=f"2025-09-{day:02d}T10:00:00+08:00", time_zone=TZ
        ),
        end=cm.CreateEventRequestEnd(date_time=f"2025-09-{day:02d}T11:00:00+08:00", time_zone=TZ),
        **kw,
    )


async def in_thread(handle: SandboxHandle, scenario: Callable[[Sdk], T]) -> T:
    """Run ``scenario`` with a fresh Sdk in a worker thread."""
    return await asyncio.to_thread(lambda: scenario(Sdk(handle)))


async def test_token_and_bad_secret(sandbox: SandboxHandle) -> None:
    """GetAccessToken gives token + expireIn; a wrong secret raises invalidClientIdOrSecret."""

    def scenario(sdk: Sdk) -> tuple[str, int, str]:
        ok = sdk.oauth.get_access_token(
            om.GetAccessTokenRequest(app_key=sdk.handle.app_key, app_secret=sdk.handle.app_secret)
        ).body
        with pytest.raises(Exception) as info:  # noqa: PT011 - the SDK raises its own type
            sdk.oauth.get_access_token(
                om.GetAccessTokenRequest(app_key=sdk.handle.app_key, app_secret="wrong")
            )
        return ok.access_token, ok.expire_in, info.value.code  # type: ignore[attr-defined]

    token, expire_in, code = await in_thread(sandbox, scenario)
    assert token
    assert expire_in == 7200
    assert code == "invalidClientIdOrSecret"


async def test_create_shapes_through_sdk(sandbox: SandboxHandle) -> None:
    """Timed and all-day events come back with organizer, self flags and string minutes."""

    def scenario(sdk: Sdk) -> tuple[Any, Any, Any]:
        timed_ev = sdk.create(
            "u-alice",
            timed(
                "Review",
                20,
                attendees=[cm.CreateEventRequestAttendees(id="u-bob")],
                reminders=[cm.CreateEventRequestReminders(method="dingtalk", minutes=10)],
                location=cm.CreateEventRequestLocation(display_name="Room 1"),
                description="agenda",
            ),
        )
        all_day = sdk.create(
            "u-alice",
            cm.CreateEventRequest(
                summary="Holiday",
                is_all_day=True,
                start=cm.CreateEventRequestStart(date="2025-10-01"),
                end=cm.CreateEventRequestEnd(date="2025-10-02"),
            ),
        )
        as_bob = sdk.get("u-bob", timed_ev.id)
        return timed_ev, all_day, as_bob

    ev, day, bob_view = await in_thread(sandbox, scenario)
    assert ev.organizer.id == "u-alice"
    assert ev.organizer.self_ is True
    assert [(a.id, a.self_, a.response_status) for a in ev.attendees] == [
        ("u-bob", False, "needsAction")
    ]
    assert ev.reminders[0].minutes == "10"
    assert ev.location.display_name == "Room 1"
    assert ev.start.time_zone == TZ
    assert day.is_all_day is True
    assert (day.start.date, day.end.date) == ("2025-10-01", "2025-10-02")
    assert bob_view.status == "confirmed"
    assert bob_view.attendees[0].self_ is True
    assert bob_view.organizer.self_ is False


async def test_paging_patch_delete_and_sync_delta(sandbox: SandboxHandle) -> None:
    """Pages of 2 cover all events; patch and delete show up in the syncToken delta."""

    def scenario(sdk: Sdk) -> dict[str, Any]:
        ids = [sdk.create("u-alice", timed(f"E{i}", 1 + i)).id for i in range(5)]
        listed, sync = sdk.list_all("u-alice", max_results=2, show_deleted=True)
        patched = sdk.cal.patch_event_with_options(
            "u-alice",
            "primary",
            ids[0],
            cm.PatchEventRequest(id=ids[0], summary="Renamed"),
            sdk.h(cm.PatchEventHeaders, x_client_token="p-1"),
            sdk.rt,
        ).body
        sdk.cal.delete_event_with_options(
            "u-alice",
            "primary",
            ids[1],
            cm.DeleteEventRequest(push_notification=False),
            sdk.h(cm.DeleteEventHeaders),
            sdk.rt,
        )
        delta, _ = sdk.list_all("u-alice", sync_token=sync, max_results=1)
        live, _ = sdk.list_all("u-alice")
        shown, _ = sdk.list_all("u-alice", show_deleted=True)
        return {
            "ids": ids,
            "listed": listed,
            "sync": sync,
            "patched": patched,
            "delta": delta,
            "live": live,
            "shown": shown,
        }

    r = await in_thread(sandbox, scenario)
    assert [e.id for e in r["listed"]] == r["ids"]
    assert r["sync"]
    assert r["patched"].summary == "Renamed"
    assert {e.id: (e.summary, e.status) for e in r["delta"]} == {
        r["ids"][0]: ("Renamed", "confirmed"),
        r["ids"][1]: ("E1", "cancelled"),
    }
    assert r["ids"][1] not in {e.id for e in r["live"]}
    assert {e.id: e.status for e in r["shown"]}[r["ids"][1]] == "cancelled"


async def test_attendees_add_remove_respond(sandbox: SandboxHandle) -> None:
    """AddAttendee, RemoveAttendee, RespondEvent and ListAttendees through the SDK."""

    def scenario(sdk: Sdk) -> tuple[Any, Any, Any, list[Any]]:
        ev = sdk.create(
            "u-alice", timed("Meet", 22, attendees=[cm.CreateEventRequestAttendees(id="u-bob")])
        )
        sdk.cal.add_attendee_with_options(
            "u-alice",
            "primary",
            ev.id,
            cm.AddAttendeeRequest(
                attendees_to_add=[cm.AddAttendeeRequestAttendeesToAdd(id="u-carol")]
            ),
            sdk.h(cm.AddAttendeeHeaders),
            sdk.rt,
        )
        sdk.cal.remove_attendee_with_options(
            "u-alice",
            "primary",
            ev.id,
            cm.RemoveAttendeeRequest(
                attendees_to_remove=[cm.RemoveAttendeeRequestAttendeesToRemove(id="u-bob")]
            ),
            sdk.h(cm.RemoveAttendeeHeaders),
            sdk.rt,
        )
        sdk.cal.respond_event_with_options(
            "u-carol",
            "primary",
            ev.id,
            cm.RespondEventRequest(response_status="accepted"),
            sdk.h(cm.RespondEventHeaders),
            sdk.rt,
        )
        carol = sdk.get("u-carol", ev.id)
        people = sdk.cal.list_attendees_with_options(
            "u-alice",
            "primary",
            ev.id,
            cm.ListAttendeesRequest(max_results=10),
            sdk.h(cm.ListAttendeesHeaders),
            sdk.rt,
        ).body
        with pytest.raises(Exception) as info:  # noqa: PT011 - the SDK raises its own type
            sdk.get("u-bob", ev.id)
        bob_gone, _ = sdk.list_all("u-bob", show_deleted=True)
        return carol, people, info.value, bob_gone

    carol, people, bob_error, bob_gone = await in_thread(sandbox, scenario)
    assert [(a.id, a.self_, a.response_status) for a in carol.attendees] == [
        ("u-carol", True, "accepted")
    ]
    assert [a.id for a in people.attendees] == ["u-carol"]
    assert bob_error.code == "instanceNotExist"
    assert [e.status for e in bob_gone] == ["cancelled"]


async def test_recurring_series_instances_and_exception(sandbox: SandboxHandle) -> None:
    """A weekly series: both instance endpoints; patching an occurrence makes an exception."""

    def scenario(sdk: Sdk) -> dict[str, Any]:
        rec = cm.CreateEventRequestRecurrence(
            pattern=cm.CreateEventRequestRecurrencePattern(
                type="weekly", interval=1, days_of_week="monday"
            ),
            range=cm.CreateEventRequestRecurrenceRange(type="numbered", number_of_occurrences=4),
        )
        master = sdk.create("u-alice", timed("Standup", 1, recurrence=rec))  # 2025-09-01 Mon
        inst = sdk.cal.list_instances_with_options(
            "u-alice",
            "primary",
            master.id,
            cm.ListInstancesRequest(
                time_min="2025-09-01T00:00:00Z", time_max="2025-10-01T00:00:00Z", max_results=2
            ),
            sdk.h(cm.ListInstancesHeaders),
            sdk.rt,
        ).body
        second = inst.events[1].id
        sdk.cal.patch_event_with_options(
            "u-alice",
            "primary",
            second,
            cm.PatchEventRequest(id=second, summary="Moved"),
            sdk.h(cm.PatchEventHeaders),
            sdk.rt,
        )
        series = sdk.cal.list_events_instances_with_options(
            "u-alice",
            "primary",
            cm.ListEventsInstancesRequest(series_master_id=master.id, max_results=10),
            sdk.h(cm.ListEventsInstancesHeaders),
            sdk.rt,
        ).body
        listed, _ = sdk.list_all("u-alice")
        return {"master": master, "inst": inst, "series": series, "listed": listed}

    r = await in_thread(sandbox, scenario)
    master = r["master"]
    assert master.recurrence.pattern.days_of_week == "monday"
    assert len(r["inst"].events) == 2
    assert r["inst"].next_token
    assert [e.summary for e in r["series"].events] == ["Standup", "Moved", "Standup", "Standup"]
    assert all(e.series_master_id == master.id for e in r["series"].events)
    exception = next(e for e in r["listed"] if e.series_master_id)
    assert exception.summary == "Moved"
    assert exception.origin_start.date_time == "2025-09-08T02:00:00Z"
    assert {e.id for e in r["listed"]} == {master.id, exception.id}


async def test_schedule_and_calendars(sandbox: SandboxHandle) -> None:
    """querySchedule reports busy items; ListCalendars has the response.calendars wrapper."""

    def scenario(sdk: Sdk) -> tuple[Any, Any]:
        sdk.create(
            "u-alice", timed("Busy", 15, attendees=[cm.CreateEventRequestAttendees(id="u-bob")])
        )
        schedule = sdk.cal.get_schedule_with_options(
            "u-alice",
            cm.GetScheduleRequest(
                user_ids=["u-alice", "u-bob", "u-carol"],
                start_time="2025-09-15T00:00:00Z",
                end_time="2025-09-16T00:00:00Z",
            ),
            sdk.h(cm.GetScheduleHeaders),
            sdk.rt,
        ).body
        calendars = sdk.cal.list_calendars_with_options(
            "u-alice", sdk.h(cm.ListCalendarsHeaders), sdk.rt
        ).body
        return schedule, calendars

    schedule, calendars = await in_thread(sandbox, scenario)
    busy = {i.user_id: [s.status for s in i.schedule_items] for i in schedule.schedule_information}
    assert busy == {"u-alice": ["BUSY"], "u-bob": ["BUSY"], "u-carol": []}
    assert calendars.response.calendars[0].id == "primary"


async def test_failed_callbacks_through_event_sdk(sandbox: SandboxHandle) -> None:
    """A push to a dead URL ends in failedResults, readable with the event_1_0 SDK client."""
    sandbox.sandbox.set_callback(sandbox.app_key, "http://127.0.0.1:9/nothing")

    def create(sdk: Sdk) -> str:
        return str(sdk.create("u-alice", timed("Lost push", 3)).id)

    event_id = await in_thread(sandbox, create)
    await sandbox.sandbox.drain()

    def fetch(sdk: Sdk) -> Any:
        return sdk.events.get_call_back_faile_result_with_options(
            em.GetCallBackFaileResultRequest(), sdk.h(em.GetCallBackFaileResultHeaders), sdk.rt
        ).body

    body = await in_thread(sandbox, fetch)
    assert body.has_more is False
    assert [f.call_back_tag for f in body.failed_list] == ["calendar_event_change"]
    assert event_id in body.failed_list[0].call_back_data
    assert body.failed_list[0].corp_id == sandbox.corp_id
