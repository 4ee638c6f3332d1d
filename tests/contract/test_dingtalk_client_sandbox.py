"""DingTalkClient against the sandbox over real loopback HTTP, tokens cached in real Redis."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aredis

from syncd.adapters.dingtalk import DingTalkClient, TokenCache
from syncd.adapters.dingtalk.client import ATTENDEE_LIMIT_CODE
from syncd.errors import InvalidRequest, NotFound, PermissionDenied, SyncTokenInvalid
from syncd.store.tokens import TokenStore
from tests.fixtures.sandbox import SandboxHandle, start_sandbox

SHANGHAI = ZoneInfo("Asia/Shanghai")
Factory = Callable[..., DingTalkClient]


def timed(summary: str, start: datetime, minutes: int = 60, **extra: Any) -> dict[str, Any]:
    """A create body for a timed Asia/Shanghai event."""
    end = start + timedelta(minutes=minutes)
    return {
        "summary": summary,
        "start": {"dateTime": start.isoformat(), "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": end.isoformat(), "timeZone": "Asia/Shanghai"},
        **extra,
    }


def soon(hours: int = 24) -> datetime:
    """A whole hour in the near future, Shanghai time."""
    now = datetime.now(SHANGHAI).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=hours)


def ops(handle: SandboxHandle) -> dict[str, int]:
    """The sandbox's request counters by SDK action."""
    return dict(handle.sandbox.stats()["requests"])


class Sleeps(list[float]):
    """A recording stand-in for asyncio.sleep: remembers delays, returns at once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def make_client(sandbox: SandboxHandle, redis_client: aredis.Redis) -> AsyncIterator[Factory]:
    """Builds clients on the sandbox, each with its own session; tokens shared via Redis."""
    sessions: list[aiohttp.ClientSession] = []

    def build(**kwargs: Any) -> DingTalkClient:
        session = aiohttp.ClientSession()
        sessions.append(session)
        tokens = kwargs.pop("tokens", None) or TokenCache(TokenStore(redis_client))
        kwargs.setdefault("sleep", Sleeps())
        return DingTalkClient(
            session, sandbox.url, sandbox.app_key, sandbox.app_secret, tokens, **kwargs
        )

    yield build
    for session in sessions:
        await session.close()


async def test_token_is_fetched_once_for_two_clients(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """Two clients (two workers) sharing Redis fetch one access token between them."""
    a, b = make_client(), make_client()
    await a.list_calendars("u-alice")
    await b.list_calendars("u-bob")
    await asyncio.gather(a.list_calendars("u-carol"), b.list_calendars("u-carol"))
    assert ops(sandbox)["GetAccessToken"] == 1
    assert ops(sandbox)["ListCalendars"] == 4


async def test_expired_token_is_refreshed_transparently(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """When DingTalk invalidates every token, the next call refreshes once and succeeds."""
    client = make_client()
    await client.list_calendars("u-alice")
    sandbox.sandbox.expire_access_tokens()
    calendars = await client.list_calendars("u-alice")
    assert calendars[0]["id"] == "primary"
    assert ops(sandbox)["GetAccessToken"] == 2
    assert ops(sandbox)["ListCalendars"] == 3  # ok, rejected, ok


async def test_short_lived_token_is_renewed_before_it_expires(redis_client: aredis.Redis) -> None:
    """With a 2 s token lifetime the cache renews after ~1 s, so no call is ever rejected."""
    async with start_sandbox(token_ttl=2) as handle, aiohttp.ClientSession() as session:
        client = DingTalkClient(session, handle.url, handle.app_key, handle.app_secret,
                                TokenCache(TokenStore(redis_client)), sleep=Sleeps())  # fmt: skip
        for _ in range(4):
            await client.list_calendars("u-alice")
            await asyncio.sleep(0.6)
        assert ops(handle)["ListCalendars"] == 4  # none rejected
        assert ops(handle)["GetAccessToken"] >= 2


async def test_listing_pages_through_more_than_100_events(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """250 events come back in three ListEvents pages with a syncToken from the last."""
    client = make_client()
    start = soon()
    for i in range(250):
        await client.create_event("u-alice", timed(f"e{i}", start + timedelta(minutes=i)))
    result = await client.list_events(
        "u-alice", time_min=start - timedelta(days=1), time_max=start + timedelta(days=30)
    )
    assert len(result.events) == 250
    assert len({e["id"] for e in result.events}) == 250
    assert result.sync_token
    assert ops(sandbox)["ListEvents"] == 3


async def test_sync_token_delta_reports_create_patch_delete(make_client: Factory) -> None:
    """After a full list, the delta holds exactly the created, patched and deleted events."""
    client = make_client()
    keep = await client.create_event("u-alice", timed("keep", soon()))
    edit = await client.create_event("u-alice", timed("edit", soon(30)))
    drop = await client.create_event("u-alice", timed("drop", soon(50)))
    full = await client.list_events("u-alice")
    assert full.sync_token is not None

    quiet = await client.list_events("u-alice", sync_token=full.sync_token)
    assert quiet.events == []

    new = await client.create_event("u-alice", timed("new", soon(70)))
    await client.patch_event("u-alice", edit["id"], {"summary": "edited"})
    await client.delete_event("u-alice", drop["id"])
    delta = await client.list_events("u-alice", sync_token=full.sync_token)
    by_id = {e["id"]: e for e in delta.events}
    assert set(by_id) == {new["id"], edit["id"], drop["id"]}
    assert keep["id"] not in by_id
    assert by_id[edit["id"]]["summary"] == "edited"
    assert by_id[drop["id"]]["status"] == "cancelled"
    assert by_id[new["id"]]["status"] == "confirmed"
    again = await client.list_events("u-alice", sync_token=delta.sync_token)
    assert again.events == []


async def test_stale_sync_token_raises_sync_token_invalid(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """An expired syncToken raises SyncTokenInvalid (the caller re-lists in full)."""
    client = make_client()
    full = await client.list_events("u-alice")
    sandbox.sandbox.expire_sync_tokens()
    with pytest.raises(SyncTokenInvalid):
        await client.list_events("u-alice", sync_token=full.sync_token)
    assert ops(sandbox)["ListEvents"] == 2  # not retried


async def test_throttling_is_retried_with_growing_jittered_backoff(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """Under 60 % throttling every call succeeds; delays respect base*2^n, vary, and grow."""
    client = make_client(max_retries=12, rng=random.Random(1))
    await client.list_calendars("u-alice")  # token first
    sandbox.sandbox.set_faults(throttle_rate=0.6, seed=3)
    per_call: list[list[float]] = []
    for _ in range(40):
        sleeps = Sleeps()
        client._sleep = sleeps
        assert (await client.list_calendars("u-alice"))[0]["id"] == "primary"
        per_call.append(list(sleeps))
    delays = [d for call in per_call for d in call]
    assert ops(sandbox)["ListCalendars"] == 41 + len(delays)
    assert len(delays) > 20
    assert all(0 <= d <= 0.5 * 2**n for call in per_call for n, d in enumerate(call))
    assert len(set(delays)) == len(delays)  # jitter: no two waits alike
    first = [c[0] for c in per_call if c]
    third = [c[2] for c in per_call if len(c) > 2]
    assert third
    assert sum(third) / len(third) > sum(first) / len(first)


async def test_server_errors_are_retried(sandbox: SandboxHandle, make_client: Factory) -> None:
    """Injected 500s are retried until the call goes through."""
    client = make_client(max_retries=10)
    await client.list_calendars("u-alice")
    sandbox.sandbox.set_faults(error_rate=0.5, error_status=500, seed=5)
    for _ in range(10):
        await client.get_event("u-alice", (await client.create_event(
            "u-alice", timed("x", soon())))["id"])  # fmt: skip
    sandbox.sandbox.set_faults(error_rate=0.0)
    assert len((await client.list_events("u-alice")).events) == 10
    assert ops(sandbox)["CreateEvent"] + ops(sandbox)["GetEvent"] > 20


async def test_create_retried_after_gateway_timeout_does_not_duplicate(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """A create that ran but answered 504 is retried with its x-client-token: one event."""
    client = make_client()
    await client.list_calendars("u-alice")
    sandbox.sandbox.set_faults(error_rate=1.0, error_status=504)
    created = await client.create_event("u-alice", timed("once", soon()))
    sandbox.sandbox.set_faults(error_rate=0.0)
    events = (await client.list_events("u-alice")).events
    assert [e["id"] for e in events] == [created["id"]]
    assert ops(sandbox)["CreateEvent"] == 2


async def test_permission_error_is_not_retried(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """Bob may not patch Alice's event: PermissionDenied after exactly one request."""
    client = make_client()
    event = await client.create_event("u-alice", timed("mine", soon(), attendees=[{"id": "u-bob"}]))
    with pytest.raises(PermissionDenied):
        await client.patch_event("u-bob", event["id"], {"summary": "hijacked"})
    assert ops(sandbox)["PatchEvent"] == 1


async def test_1200_attendees_go_in_three_batches(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """Adding 1,200 attendees takes three AddAttendee calls (500, 500, 200)."""
    client = make_client()
    event = await client.create_event("u-alice", timed("big", soon()))
    people = [{"id": f"u-{i:04d}", "isOptional": False} for i in range(1200)]
    await client.add_attendees("u-alice", event["id"], people)
    assert ops(sandbox)["AddAttendee"] == 3
    listed = await client.list_attendees("u-alice", event["id"])
    assert {a["id"] for a in listed} == {p["id"] for p in people}
    assert ops(sandbox)["ListAttendees"] == 3


async def test_create_with_1200_attendees_adds_the_rest_in_batches(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """A create body with 1,200 attendees: create with 500, then two add batches."""
    client = make_client()
    people = [{"id": f"u-{i:04d}"} for i in range(1200)]
    created = await client.create_event("u-alice", timed("big", soon(), attendees=people))
    assert len(created["attendees"]) == 1200
    assert ops(sandbox)["CreateEvent"] == 1
    assert ops(sandbox)["AddAttendee"] == 2


async def test_more_than_5000_attendees_is_refused_before_sending(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """5,001 attendees raise InvalidRequest (syncd.attendeeLimit) and nothing is sent."""
    client = make_client()
    event = await client.create_event("u-alice", timed("huge", soon()))
    before = ops(sandbox)
    people = [{"id": f"u-{i:05d}"} for i in range(5001)]
    with pytest.raises(InvalidRequest, match="5000") as info:
        await client.add_attendees("u-alice", event["id"], people)
    assert info.value.code == ATTENDEE_LIMIT_CODE
    with pytest.raises(InvalidRequest, match="5000"):
        await client.create_event("u-alice", timed("huge", soon(), attendees=people))
    assert ops(sandbox) == before


async def test_patch_with_700_attendees_uses_add_and_remove(
    sandbox: SandboxHandle, make_client: Factory
) -> None:
    """Over 500 attendees a patch sets the list by add/remove batches to exactly the target."""
    client = make_client()
    first = [{"id": f"u-{i:04d}"} for i in range(300)]
    event = await client.create_event("u-alice", timed("x", soon(), attendees=first))
    target = [{"id": f"u-{i:04d}"} for i in range(100, 800)]
    patched = await client.patch_event(
        "u-alice", event["id"], {"summary": "y", "attendees": target}
    )
    assert {a["id"] for a in patched["attendees"]} == {a["id"] for a in target}
    assert patched["summary"] == "y"
    assert ops(sandbox)["RemoveAttendee"] == 1
    assert ops(sandbox)["AddAttendee"] == 1


async def test_delete_of_missing_event_is_fine_and_get_is_not_found(make_client: Factory) -> None:
    """Deleting twice is fine; reading a deleted event raises NotFound."""
    client = make_client()
    event = await client.create_event("u-alice", timed("gone", soon()))
    await client.delete_event("u-alice", event["id"])
    await client.delete_event("u-alice", event["id"])
    with pytest.raises(NotFound):
        await client.get_event("u-alice", event["id"])


async def test_respond_schedule_instances_and_failed_callbacks(make_client: Factory) -> None:
    """The remaining operations speak the sandbox's wire format."""
    client = make_client()
    start = soon()
    body = timed("weekly", start, attendees=[{"id": "u-bob"}])
    body["recurrence"] = {"pattern": {"type": "daily", "interval": 1},
                          "range": {"type": "numbered", "numberOfOccurrences": 5}}  # fmt: skip
    series = await client.create_event("u-alice", body)
    await client.respond("u-bob", series["id"], "accepted")
    got = await client.get_event("u-bob", series["id"])
    assert got["attendees"][0]["responseStatus"] == "accepted"
    instances = await client.list_instances(
        "u-alice", series["id"], time_min=start - timedelta(hours=1),
        time_max=start + timedelta(days=10),
    )  # fmt: skip
    assert len(instances) == 5
    busy = await client.query_schedule(
        "u-alice", ["u-alice", "u-bob"], start, start + timedelta(hours=2)
    )
    assert [len(b["scheduleItems"]) for b in busy] == [1, 1]
    failed = await client.failed_callbacks(0, int(datetime.now(UTC).timestamp() * 1000))
    assert failed.items == []
    assert failed.has_more is False
