"""Conformance: the official ``dingtalk-stream`` SDK, unchanged, against the sandbox's Stream mode.

The SDK runs in a subprocess (``stream_sdk_client.py``) with ``DINGTALK_OPENAPI_ENDPOINT``
pointed at the sandbox: it opens a connection, receives ``calendar_event_change`` frames,
answers system pings and ACKs; an event it refuses (code 500) is delivered again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.fixtures.sandbox import (
    SandboxApi,
    SandboxHandle,
    default_seed,
    sandbox_token,
    start_sandbox,
    timed_event,
)

CLIENT = Path(__file__).with_name("stream_sdk_client.py")
ROOT = Path(__file__).resolve().parents[2]


class SdkProcess:
    """The SDK subprocess and the JSON lines it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    async def next_event(self, within: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
            assert raw, "the SDK process ended"
            line = json.loads(raw)
            self.lines.append(line)
            if "eventId" in line:
                return dict(line)


@asynccontextmanager
async def sdk_client(handle: SandboxHandle, *flags: str) -> AsyncIterator[SdkProcess]:
    env = {**os.environ, "DINGTALK_OPENAPI_ENDPOINT": handle.url, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        handle.app_key,
        handle.app_secret,
        *flags,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield SdkProcess(proc)
    finally:
        proc.kill()
        await proc.wait()


async def connected(handle: SandboxHandle, count: int = 1, within: float = 20.0) -> None:
    """Wait until the app has ``count`` open Stream connections."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while len(handle.sandbox.stream.open_conns(handle.app_key)) < count:
        assert loop.time() < until, "the SDK did not connect"
        await asyncio.sleep(0.05)


async def acked(handle: SandboxHandle, count: int, within: float = 10.0) -> None:
    """Wait until the sandbox has received ``count`` successful ACKs."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while handle.sandbox.stream.counts["acked"] < count:
        assert loop.time() < until, "no ACK"
        await asyncio.sleep(0.02)


async def create(handle: SandboxHandle, summary: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        api = SandboxApi(handle, session, await sandbox_token(handle))
        body = timed_event(summary, attendees=[{"id": "u-bob"}])
        return await api.create("u-alice", body)


async def test_sdk_receives_calendar_event_change_and_acks() -> None:
    """Connect, receive one calendar_event_change with the documented headers, ACK it."""
    async with (
        start_sandbox(default_seed(delivery="stream")) as handle,
        sdk_client(handle) as sdk,
    ):
        await connected(handle)
        event = await create(handle, "Over the stream")
        line = await sdk.next_event()
        assert line["eventType"] == "calendar_event_change"
        assert line["corpId"] == handle.corp_id
        data = line["data"]
        assert data["calendarEventId"] == event["id"]
        assert data["changeType"] == "created"
        assert data["unionIdList"] == ["u-alice", "u-bob"]
        assert data["eventId"] == line["eventId"]
        await acked(handle, 1)
        stats = handle.sandbox.stats()
        assert stats["stream"]["acked"] == 1
        assert stats["stream"]["pending"] == 0
        assert stats["callbacks"]["attempts"] == 0  # a stream app gets no HTTP push
        assert stats["requests"]["OpenConnection"] == 1


async def test_sdk_answers_system_ping() -> None:
    """A SYSTEM ping is answered by the SDK with the same messageId."""
    async with (
        start_sandbox(default_seed(delivery="stream")) as handle,
        sdk_client(handle),
    ):
        await connected(handle)
        assert await handle.sandbox.stream.ping(handle.app_key) == 1
        for _ in range(100):
            if handle.sandbox.stream.counts["pongs"] == 1:
                break
            await asyncio.sleep(0.05)
        assert handle.sandbox.stream.counts["pongs"] == 1


async def test_unacked_frame_is_redelivered() -> None:
    """An event the SDK refuses (code 500) comes again, same eventId, new messageId."""
    async with (
        start_sandbox(default_seed(delivery="stream"), stream_ack_timeout=0.5) as handle,
        sdk_client(handle, "--refuse-first") as sdk,
    ):
        await connected(handle)
        await create(handle, "Refused once")
        first = await sdk.next_event()
        again = await sdk.next_event()
        assert first["answer"] == 500
        assert again["answer"] == 200
        assert again["eventId"] == first["eventId"]
        assert again["messageId"] != first["messageId"]
        assert again["data"] == first["data"]
        await acked(handle, 1)
        assert handle.sandbox.stream.stats()["pending"] == 0
        assert handle.sandbox.stream.counts["redelivered"] >= 1


async def test_events_wait_for_a_connection_then_survive_a_drop() -> None:
    """Made while nothing is connected: delivered on connect; a dropped socket loses nothing."""
    async with start_sandbox(default_seed(delivery="stream"), stream_ack_timeout=0.5) as handle:
        event = await create(handle, "Before anyone listens")
        assert handle.sandbox.stream.stats()["pending"] == 1
        async with sdk_client(handle) as sdk:
            line = await sdk.next_event()
            assert line["data"]["calendarEventId"] == event["id"]
            await acked(handle, 1)  # else it would rightly come again after the drop
            await handle.sandbox.stream.close_all(handle.app_key)
            # the SDK reconnects (after its own 10 s pause) with a fresh ticket
            await asyncio.sleep(0.1)
            second = await create(handle, "While reconnecting")
            line = await sdk.next_event(within=30)
            assert line["data"]["calendarEventId"] == second["id"]
        assert handle.sandbox.stream.counts["connections"] == 2
        assert handle.sandbox.stats()["requests"]["OpenConnection"] == 2
