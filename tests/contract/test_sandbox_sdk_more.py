"""Conformance with the official DingTalk SDK, part 2: attendees, series, schedule, failures."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_dingtalk.calendar_1_0 import models as cm
from alibabacloud_dingtalk.event_1_0 import models as em

from tests.contract.test_sandbox_sdk import Sdk, in_thread, timed
from tests.fixtures.sandbox import SandboxHandle


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
        view = sdk.cal.list_events_view_with_options(
            "u-alice",
            "primary",
            cm.ListEventsViewRequest(time_min="2025-09-01T00:00Z", time_max="2025-10-01T00:00Z"),
            sdk.h(cm.ListEventsViewHeaders),
            sdk.rt,
        ).body
        return {"master": master, "inst": inst, "series": series, "listed": listed, "view": view}

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
    assert [e.summary for e in r["view"].events] == ["Standup", "Moved", "Standup", "Standup"]
    assert r["view"].events[1].id == exception.id


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
