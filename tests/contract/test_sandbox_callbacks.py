"""The sandbox's callback pushes: payload, encryption, success check, retries, failedResults."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from syncd import crypto
from tests.fixtures.sandbox import (
    CallbackReceiver,
    SandboxHandle,
    sandbox_token,
    start_receiver,
    start_sandbox,
)
from tests.fixtures.sandbox import (
    SandboxApi as Api,
)
from tests.fixtures.sandbox import (
    timed_event as timed,
)


def changes(receiver: CallbackReceiver) -> list[dict[str, Any]]:
    """The calendar_event_change pushes received so far."""
    return receiver.of_type("calendar_event_change")


async def test_create_pushes_signed_pascal_case_payload(
    api: Api, sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """A create pushes one verified calendar_event_change with every documented field."""
    ev = await api.create("u-alice", timed("Push me", attendees=[{"id": "u-bob"}]))
    await sandbox.sandbox.drain()
    assert callback_receiver.rejected == []
    [push] = changes(callback_receiver)
    assert push["EventType"] == "calendar_event_change"
    assert push["CorpId"] == sandbox.corp_id
    assert push["CalendarEventId"] == ev["id"]
    assert push["ChangeType"] == "created"
    assert push["UnionIdList"] == ["u-alice", "u-bob"]
    assert push["operator"] == {"type": "user"}
    assert push["CalendarId"] != "primary"
    assert push["BizId"]
    assert push["LegacyCalendarEventId"]
    assert isinstance(push["EventTime"], int)
    assert isinstance(push["CalendarEventUpdateTime"], int)
    assert set(callback_receiver.queries[0]) == {"signature", "timestamp", "nonce"}
    assert sandbox.sandbox.stats()["callbacks"]["sent"] == 1


async def test_change_types_and_removed_attendees(
    api: Api, sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """Patch → updated, attendee removal lists the removed user, delete → cancelled."""
    ev = await api.create("u-alice", timed("Flow", attendees=[{"id": "u-bob"}, {"id": "u-carol"}]))
    await sandbox.sandbox.drain()
    await api.call(
        "PUT", api.events("u-alice", f"/{ev['id']}"), json={"id": ev["id"], "summary": "F2"}
    )
    await sandbox.sandbox.drain()
    await api.call(
        "POST",
        api.events("u-alice", f"/{ev['id']}/attendees/batchRemove"),
        json={"attendeesToRemove": [{"id": "u-carol"}]},
    )
    await sandbox.sandbox.drain()
    await api.call("DELETE", api.events("u-alice", f"/{ev['id']}"))
    await sandbox.sandbox.drain()
    kinds = [(p["ChangeType"], p["UnionIdList"]) for p in changes(callback_receiver)]
    assert kinds == [
        ("created", ["u-alice", "u-bob", "u-carol"]),
        ("updated", ["u-alice", "u-bob", "u-carol"]),
        ("updated", ["u-alice", "u-bob", "u-carol"]),
        ("cancelled", ["u-alice", "u-bob"]),
    ]


async def test_attendee_delete_is_delete_view(
    api: Api, sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """An attendee deleting the event only hides it for them (ChangeType deleteView)."""
    ev = await api.create("u-alice", timed("Mine", attendees=[{"id": "u-bob"}]))
    status, _ = await api.call("DELETE", api.events("u-bob", f"/{ev['id']}"))
    assert status == 200
    await sandbox.sandbox.drain()
    assert changes(callback_receiver)[-1]["ChangeType"] == "deleteView"
    assert changes(callback_receiver)[-1]["UnionIdList"] == ["u-bob"]
    status, alice = await api.call("GET", api.events("u-alice", f"/{ev['id']}"))
    assert status == 200
    assert alice["status"] == "confirmed"
    status, _ = await api.call("GET", api.events("u-bob", f"/{ev['id']}"))
    assert status == 404


async def test_camel_case_switch() -> None:
    """With camel_case the calendar fields are camelCase and carry eventId."""
    async with start_sandbox(camel_case=True) as handle, start_receiver() as receiver:
        handle.sandbox.set_callback(handle.app_key, receiver.url)
        token = await sandbox_token(handle)
        async with aiohttp.ClientSession() as session:
            await Api(handle, session, token).create("u-alice", timed("camel"))
        await handle.sandbox.drain()
    [push] = changes(receiver)
    assert push["changeType"] == "created"
    assert push["unionIdList"] == ["u-alice"]
    assert "calendarEventId" in push
    assert "eventId" in push
    assert "CalendarEventId" not in push


@pytest.mark.parametrize("mode", ["wrong_signature", "wrong_text", "status_500"])
async def test_bad_reply_is_retried_then_stored(
    api: Api, sandbox: SandboxHandle, callback_receiver: CallbackReceiver, mode: str
) -> None:
    """A receiver that does not answer a valid success gets 4 tries, then failedResults."""
    callback_receiver.mode = mode
    ev = await api.create("u-alice", timed("Retry me"))
    await sandbox.sandbox.drain()
    assert len(changes(callback_receiver)) == 4
    stats = sandbox.sandbox.stats()["callbacks"]
    assert (stats["sent"], stats["failed"], stats["retries"]) == (0, 1, 3)
    status, body = await api.call("GET", "/v1.0/event/callbacks/failedResults")
    assert status == 200
    assert body["hasMore"] is False
    [item] = body["failedList"]
    assert item["callBackTag"] == "calendar_event_change"
    assert item["corpId"] == sandbox.corp_id
    assert ev["id"] in item["callBackData"]
    _, again = await api.call("GET", "/v1.0/event/callbacks/failedResults")
    assert again["failedList"] == []


async def test_slow_receiver_counts_as_failure() -> None:
    """A reply later than the callback timeout is a failed attempt."""
    async with (
        start_sandbox(retry_delays=(), callback_timeout=0.3) as handle,
        start_receiver() as receiver,
    ):
        receiver.mode, receiver.delay = "slow", 0.6
        handle.sandbox.set_callback(handle.app_key, receiver.url)
        token = await sandbox_token(handle)
        async with aiohttp.ClientSession() as session:
            await Api(handle, session, token).create("u-alice", timed("slow"))
        await handle.sandbox.drain()
        assert handle.sandbox.stats()["callbacks"]["failed"] == 1
        assert len(handle.sandbox.state.failed[handle.app_key]) == 1


async def test_push_never_blocks_the_api_call() -> None:
    """The API answers at once even when the receiver takes a second to reply."""
    async with start_sandbox() as handle, start_receiver() as receiver:
        receiver.mode, receiver.delay = "slow", 1.0
        handle.sandbox.set_callback(handle.app_key, receiver.url)
        token = await sandbox_token(handle)
        async with aiohttp.ClientSession() as session:
            began = time.monotonic()
            await Api(handle, session, token).create("u-alice", timed("fast"))
            elapsed = time.monotonic() - began
        await handle.sandbox.drain()
    assert elapsed < 0.5
    assert len(changes(receiver)) == 1


async def test_failed_results_paging_and_window() -> None:
    """At most 200 failures per call with hasMore; beginTime/endTime filter by eventTime."""
    async with start_sandbox(retry_delays=()) as handle:
        handle.sandbox.set_callback(handle.app_key, "http://127.0.0.1:9/dead")
        token = await sandbox_token(handle)
        async with aiohttp.ClientSession() as session:
            api = Api(handle, session, token)
            for i in range(201):
                await api.create("u-alice", timed(f"E{i}", day=1 + i % 28))
            await handle.sandbox.drain()
            stored = handle.sandbox.state.failed[handle.app_key]
            first_time = stored[0]["eventTime"]
            _, none = await api.call(
                "GET",
                "/v1.0/event/callbacks/failedResults",
                params={"endTime": str(first_time - 1)},
            )
            _, page1 = await api.call("GET", "/v1.0/event/callbacks/failedResults")
            _, page2 = await api.call("GET", "/v1.0/event/callbacks/failedResults")
    assert none == {"failedList": [], "hasMore": False}
    assert (len(page1["failedList"]), page1["hasMore"]) == (200, True)
    assert (len(page2["failedList"]), page2["hasMore"]) == (1, False)


async def test_check_url_on_registration(sandbox: SandboxHandle) -> None:
    """POST /_sandbox/callbacks sends check_url and keeps the URL only if answered success."""
    async with start_receiver() as good, start_receiver() as bad, aiohttp.ClientSession() as s:
        bad.mode = "wrong_text"
        admin = f"{sandbox.url}/_sandbox/callbacks"
        async with s.post(admin, json={"app_key": sandbox.app_key, "url": good.url}) as resp:
            assert resp.status == 200
        async with s.post(admin, json={"app_key": sandbox.app_key, "url": bad.url}) as resp:
            assert resp.status == 400
    assert good.received == [{"EventType": "check_url"}]
    assert bad.received == [{"EventType": "check_url"}]
    assert sandbox.sandbox.targets[sandbox.app_key].url == good.url


async def test_set_callback_with_check_is_background(sandbox: SandboxHandle) -> None:
    """set_callback(check=True) pushes check_url in the background; drain waits for it."""
    async with start_receiver() as receiver:
        sandbox.sandbox.set_callback(sandbox.app_key, receiver.url, check=True)
        await sandbox.sandbox.drain()
    assert receiver.received == [{"EventType": "check_url"}]
    assert sandbox.sandbox.stats()["callbacks"]["checks_ok"] == 1


async def test_drop_rate_loses_pushes(
    api: Api, sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """callback_drop_rate 1.0 loses every push (not stored as failed either)."""
    sandbox.sandbox.set_faults(callback_drop_rate=1.0)
    await api.create("u-alice", timed("lost"))
    await sandbox.sandbox.drain()
    assert changes(callback_receiver) == []
    assert sandbox.sandbox.stats()["callbacks"]["dropped"] == 1
    assert sandbox.sandbox.state.failed == {}


async def test_reply_success_of_receiver_decrypts(callback_receiver: CallbackReceiver) -> None:
    """The receiver helper's success reply is what the sandbox accepts (sanity of the helper)."""
    reply = crypto.reply_success(
        callback_receiver.token, callback_receiver.aes_key, callback_receiver.owner_key
    )
    text = crypto.open_callback(
        callback_receiver.token,
        callback_receiver.aes_key,
        callback_receiver.owner_key,
        signature=reply["msg_signature"],
        timestamp=reply["timeStamp"],
        nonce=reply["nonce"],
        encrypt=reply["encrypt"],
    )
    assert text == "success"
