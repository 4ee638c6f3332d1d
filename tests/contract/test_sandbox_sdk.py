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
