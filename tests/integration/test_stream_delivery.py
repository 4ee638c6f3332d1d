"""Stream delivery and the failedResults pull, in process, against the real parts.

The sandbox (Stream mode or HTTP pushes), a real Redis, Radicale and a real arq worker;
:func:`syncd.delivery.service.run_delivery` runs as ``syncd worker`` runs it. The
binding's ``poll_interval`` is one hour, so only the event path under test can bring a
DingTalk change to CalDAV within the test's bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config, load_config
from syncd.delivery import failed, frames
from syncd.delivery.service import DeliveryTiming, run_delivery
from syncd.delivery.stream import answer, stream_forever
from syncd.observability import FAILED_PULLED, STREAM_EVENTS
from syncd.store.connection import connect
from syncd.webhook.app import create_app
from syncd.worker.settings import create_worker
from syncd.worker.wiring import dingtalk_client
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.processes import caldav_summaries, dav_session, upcoming_event
from tests.fixtures.sandbox import (
    SandboxApi,
    SandboxHandle,
    default_seed,
    sandbox_token,
    start_sandbox,
)
from tests.fixtures.spine import to_stream_delivery, write_config

FAST = DeliveryTiming(lease_ttl_s=2.0, lease_retry_s=0.2, failed_period_s=1.0)


def stream_config(root: Path, handle: SandboxHandle, cal: CalendarHandle, redis_url: str) -> Config:
    """Tenant acme with ``delivery: stream`` and no callback (no webhook route at all)."""
    write_config(root, handle, cal.url, redis_url, auth=cal.auth, poll_interval="1h")
    to_stream_delivery(root)
    return load_config(root, {})


@asynccontextmanager
async def running(config: Config, timing: DeliveryTiming = FAST) -> AsyncIterator[None]:
    """An arq worker (no poll cron) and the delivery service, as ``syncd worker`` runs them."""
    stop = asyncio.Event()
    worker = create_worker(config, poll=False)
    tasks = [
        asyncio.create_task(worker.async_run()),
        asyncio.create_task(run_delivery(config, stop, timing)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(tasks[1], 10)
        tasks[0].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[0]
        await worker.close()


async def wait_summary(cal: CalendarHandle, summary: str, within: float) -> float:
    """Seconds until ``summary`` is in the calendar (fails after ``within``)."""
    started = time.monotonic()
    async with dav_session(cal) as http:
        while summary not in await caldav_summaries(http, cal.url):
            assert time.monotonic() - started < within, f"{summary!r} not in CalDAV"
            await asyncio.sleep(0.1)
    return time.monotonic() - started


async def api_of(handle: SandboxHandle, session: aiohttp.ClientSession) -> SandboxApi:
    return SandboxApi(handle, session, await sandbox_token(handle))


async def test_stream_tenant_syncs_to_caldav_without_webhook(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """A DingTalk change reaches CalDAV over Stream; the frame is ACKed, no HTTP push made."""
    async with (
        start_sandbox(default_seed(delivery="stream")) as handle,
        aiohttp.ClientSession() as session,
    ):
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
        api = await api_of(handle, session)
        async with running(config):
            await api.create("u-alice", upcoming_event("Streamed", 1))
            await wait_summary(radicale_calendar, "Streamed", within=20)
            stats = handle.sandbox.stats()
        assert stats["stream"]["acked"] >= 1
        assert stats["stream"]["connections"] == 1
        assert stats["callbacks"]["attempts"] == 0
        assert STREAM_EVENTS.labels("acme", "queued")._value.get() >= 1


async def test_dropped_connection_and_gap_lose_nothing(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """Changes made while the socket drops, and while no process runs, all reach CalDAV."""
    async with (
        start_sandbox(default_seed(delivery="stream"), stream_ack_timeout=1.0) as handle,
        aiohttp.ClientSession() as session,
    ):
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
        api = await api_of(handle, session)
        async with running(config):
            await api.create("u-alice", upcoming_event("Before the drop", 1))
            await wait_summary(radicale_calendar, "Before the drop", within=20)
            await handle.sandbox.stream.close_all(handle.app_key)  # the network drops
            await api.create("u-alice", upcoming_event("During the drop", 2))
            await wait_summary(radicale_calendar, "During the drop", within=20)
        # nobody connected: DingTalk keeps the event for the next connection
        await api.create("u-alice", upcoming_event("While down", 3))
        assert handle.sandbox.stream.stats()["pending"] == 1
        async with running(config):
            await wait_summary(radicale_calendar, "While down", within=20)
        assert handle.sandbox.stream.counts["connections"] >= 3
        async with dav_session(radicale_calendar) as http:
            summaries = await caldav_summaries(http, radicale_calendar.url)
        assert sorted(summaries) == ["Before the drop", "During the drop", "While down"]


async def test_event_is_acked_later_when_redis_cannot_queue_it(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """Redis unreachable: the ACK is code 500 / LATER, so DingTalk delivers it again."""
    async with start_sandbox(default_seed(delivery="stream")) as handle:
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
    dead = connect(queue.redis_settings(f"redis://127.0.0.1:{free_port()}/0"), socket_timeout=1)
    frame = {
        "specVersion": "1.0",
        "type": "EVENT",
        "headers": {"messageId": "m-1", "eventType": "calendar_event_change", "eventId": "e-1"},
        "data": json.dumps({"unionIdList": ["u-alice"], "calendarEventId": "x"}),
    }
    try:
        reply, end = await answer(dead, config.tenants["acme"], json.dumps(frame))
    finally:
        with contextlib.suppress(Exception):
            await dead.aclose()
    assert reply is not None
    assert not end
    ack = json.loads(reply)
    assert ack["code"] == 500
    assert ack["headers"]["messageId"] == "m-1"
    assert json.loads(ack["data"]) == {"status": "LATER"}


async def test_malformed_frames_are_counted_and_do_not_stop_the_stream(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """Garbage, a bad event, a ping and a disconnect: each answered as the protocol says."""
    pool: ArqRedis = await create_pool(queue.redis_settings(redis_url))
    async with start_sandbox(default_seed(delivery="stream")) as handle:
        tenant = stream_config(tmp_path / "c", handle, radicale_calendar, redis_url).tenants["acme"]
    before = STREAM_EVENTS.labels("acme", "rejected")._value.get()
    try:
        assert await answer(pool, tenant, "not json") == (None, False)
        bad = {"type": "EVENT", "headers": {"messageId": "m-2", "eventType": "x"}, "data": "[1]"}
        reply, _ = await answer(pool, tenant, json.dumps(bad))
        assert reply is not None
        assert json.loads(reply)["code"] == 200  # never consumable: not redelivered
        ping = {"type": "SYSTEM", "headers": {"topic": "ping", "messageId": "p"}, "data": '{"a":1}'}
        reply, end = await answer(pool, tenant, json.dumps(ping))
        assert reply is not None
        assert not end
        assert json.loads(json.loads(reply)["data"]) == {"a": 1}
        bye = {"type": "SYSTEM", "headers": {"topic": frames.DISCONNECT}, "data": "{}"}
        assert await answer(pool, tenant, json.dumps(bye)) == (None, True)
    finally:
        await pool.aclose()
    assert STREAM_EVENTS.labels("acme", "rejected")._value.get() == before + 1


async def test_failed_results_reach_caldav_within_the_pull_period(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """HTTP tenant, webhook unreachable, poll in an hour: the failedResults pull delivers."""
    dead_url = f"http://127.0.0.1:{free_port()}/callbacks/acme"
    async with (
        start_sandbox(default_seed(dead_url)) as handle,
        aiohttp.ClientSession() as session,
    ):
        root = tmp_path / "config"
        write_config(root, handle, radicale_calendar.url, redis_url, auth=radicale_calendar.auth,
                     poll_interval="1h")  # fmt: skip
        config = load_config(root, {})
        api = await api_of(handle, session)
        async with running(config):
            await asyncio.sleep(0.5)  # the start-up pull found nothing
            await api.create("u-alice", upcoming_event("Missed push", 1))
            await handle.sandbox.drain()  # every retry failed: stored for failedResults
            assert handle.sandbox.stats()["callbacks"]["failed"] == 1
            waited = await wait_summary(radicale_calendar, "Missed push", within=15)
        stats = handle.sandbox.stats()
        assert stats["requests"]["GetCallBackFaileResult"] >= 2
        assert handle.sandbox.state.failed.get(handle.app_key) == []
        assert waited < FAST.failed_period_s + 10


async def test_webhook_refuses_pushes_for_a_stream_tenant_without_callback(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """``POST /callbacks/acme`` of a stream tenant with no callback: 404, nothing queued."""
    async with start_sandbox(default_seed(delivery="stream")) as handle:
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
    pool = await create_pool(queue.redis_settings(redis_url))
    runner = web.AppRunner(create_app(config, pool))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/callbacks/acme",
                params={"signature": "s", "timestamp": "1", "nonce": "n"},
                json={"encrypt": "x"},
            ) as resp,
        ):
            assert resp.status == 404
            assert (await resp.json())["error"] == "no_callback"
        assert await pool.zcard("arq:queue") == 0
    finally:
        await runner.cleanup()
        await pool.aclose()


async def test_syncd_answers_pings_and_reconnects_after_a_disconnect(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """SYSTEM ping is answered; SYSTEM disconnect: a new connection with a fresh ticket at once."""
    async with (
        start_sandbox(default_seed(delivery="stream")) as handle,
        aiohttp.ClientSession() as session,
    ):
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
        api = await api_of(handle, session)
        hub = handle.sandbox.stream
        async with running(config):
            await _until(lambda: len(hub.open_conns(handle.app_key)) == 1, 10)
            assert await hub.ping(handle.app_key) == 1
            await _until(lambda: hub.counts["pongs"] == 1, 5)
            assert await hub.disconnect(handle.app_key) == 1
            # the sandbox would close the socket only after 10 s: syncd leaves first
            await _until(lambda: hub.counts["connections"] == 2, 3)
            await api.create("u-alice", upcoming_event("After disconnect", 1))
            await wait_summary(radicale_calendar, "After disconnect", within=20)
        assert handle.sandbox.stats()["requests"]["OpenConnection"] == 2


async def _until(check: Callable[[], bool], within: float) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within
        await asyncio.sleep(0.02)


async def test_failed_open_backs_off_then_connects(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """connections/open failing (500s): retried with growing pauses, then connected."""
    async with start_sandbox(default_seed(delivery="stream")) as handle:
        config = stream_config(tmp_path / "config", handle, radicale_calendar, redis_url)
        tenant = config.tenants["acme"]
        handle.sandbox.set_faults(error_rate=1.0, error_status=500)
        pool = await create_pool(queue.redis_settings(redis_url))
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(stream_forever(session, pool, tenant, backoff_s=(0.05, 0.4)))
            try:
                await asyncio.sleep(1.5)
                attempts = handle.sandbox.requests["OpenConnection"]
                # 0, .05, .15, .35, .75, 1.15 s (±20 %): a handful, not a tight loop
                assert 3 <= attempts <= 8
                handle.sandbox.set_faults(error_rate=0.0)
                await _until(lambda: len(handle.sandbox.stream.open_conns(handle.app_key)) == 1, 3)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await pool.aclose()


async def test_failed_results_skip_a_malformed_entry_and_queue_the_rest(
    tmp_path: Path, radicale_calendar: CalendarHandle, redis_url: str
) -> None:
    """One unparseable failedResults entry is counted and skipped; the good one is queued."""
    async with start_sandbox(default_seed()) as handle, aiohttp.ClientSession() as session:
        root = tmp_path / "config"
        write_config(root, handle, radicale_calendar.url, redis_url, auth=radicale_calendar.auth)
        tenant = load_config(root, {}).tenants["acme"]
        good = json.dumps(
            {"EventType": "calendar_event_change", "BizId": "b-1", "UnionIdList": ["u-alice"]}
        )
        handle.sandbox.state.failed[handle.app_key] = [
            {"callBackTag": "calendar_event_change", "callBackData": "{not json", "eventTime": 1},
            {"callBackTag": "calendar_event_change", "callBackData": good, "eventTime": 2},
        ]
        pool = await create_pool(queue.redis_settings(redis_url))
        before = FAILED_PULLED.labels("acme", "rejected")._value.get()
        try:
            client = dingtalk_client(tenant, session, TokenCache(pool))
            assert await failed.pull(pool, tenant, client) == 1
            assert await pool.zcard("arq:queue") == 1
            assert await failed.pull(pool, tenant, client) == 0  # handed out once
        finally:
            await pool.aclose()
        assert FAILED_PULLED.labels("acme", "rejected")._value.get() == before + 1
