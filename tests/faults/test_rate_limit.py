"""The DingTalk request pace: every worker of one app together stays under the app's qps.

Counted where DingTalk would count, at the sandbox: a middleware in front of the
sandbox's own records the arrival of every Open API request, and the busiest one-second
window of those arrivals (``(t - 1 s, t]``, as the sandbox's own QPS limit counts) is
compared with the configured ``dingtalk.qps``. Each "worker" has its own Redis
connection, HTTP session and :class:`RequestPace`, as separate processes would; they share
only Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aredis
from arq.connections import create_pool
from pydantic import ValidationError
from structlog.testing import capture_logs

from syncd import queue
from syncd.adapters.dingtalk.client import DingTalkClient
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import DingTalkApp, load_config, tenant_schema
from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.ratelimit import LocalBucket, RequestPace
from syncd.worker.settings import create_worker
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import PASSWORD, USERNAME, CalDAVServer, make_calendar
from tests.fixtures.fault_proxy import counting_sandbox, per_second
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import APP_KEY, APP_SECRET, SandboxHandle, timed_event

QPS = 8
CLIENTS = 3
CALLS_PER_CLIENT = 16


async def _one_client(sandbox: SandboxHandle, redis_url: str, n: int, user: str) -> int:
    """A client with its own Redis, session and pace making ``n`` calls, 4 at a time."""
    redis = aredis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    gate = asyncio.Semaphore(4)
    try:
        pace = RequestPace(redis)
        async with aiohttp.ClientSession() as session:
            client = DingTalkClient(
                session,
                sandbox.url,
                APP_KEY,
                APP_SECRET,
                TokenCache(None),
                pace=pace.for_app(APP_KEY, QPS),
            )

            async def create(i: int) -> None:
                async with gate:
                    await client.create_event(user, timed_event(f"{user} #{i}", day=1 + i % 28))

            await asyncio.gather(*(create(i) for i in range(n)))
        return sum(client.requests.values())
    finally:
        await redis.aclose()


async def _fleet(sandbox: SandboxHandle, redis_url: str) -> tuple[int, float]:
    started = time.monotonic()
    users = ["u-alice", "u-bob", "u-carol"][:CLIENTS]
    sent = await asyncio.gather(
        *(_one_client(sandbox, redis_url, CALLS_PER_CLIENT, u) for u in users)
    )
    return sum(sent), time.monotonic() - started


async def test_three_clients_of_one_app_stay_under_its_qps(redis_url: str) -> None:
    """Three clients sharing one app and one Redis: at most qps calls in any second."""
    async with counting_sandbox() as counted:
        counted.handle.sandbox.set_faults(qps_limit=QPS)  # DingTalk's own limit, per API
        sent, seconds = await _fleet(counted.handle, redis_url)
        observed = per_second(c.at for c in counted.calls)
        print(
            f"\nrate limit (shared): configured qps={QPS} observed busiest second={observed} "
            f"calls={sent} in {seconds:.1f}s ({sent / seconds:.1f}/s) throttled={counted.throttled}"
        )
        assert len(counted.calls) == sent == CLIENTS * (CALLS_PER_CLIENT + 1)  # + a token each
        assert observed <= QPS
        assert counted.throttled == 0
        for user in ("u-alice", "u-bob", "u-carol"):
            assert len(counted.handle.sandbox.events_of(user)) == CALLS_PER_CLIENT
        # The pace really waited: that many calls cannot be made faster than qps allows.
        assert seconds >= (sent - 1) / QPS


async def test_without_redis_each_client_keeps_to_qps_alone() -> None:
    """Redis unreachable: calls still succeed, each client paced locally (so the fleet is not)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with counting_sandbox() as counted:
        with capture_logs() as logs:
            sent, seconds = await _fleet(counted.handle, dead)
        observed = per_second(c.at for c in counted.calls)
        print(
            f"\nrate limit (Redis down, local fallback): configured qps={QPS} "
            f"observed busiest second={observed} calls={sent} in {seconds:.1f}s"
        )
        assert sent == CLIENTS * (CALLS_PER_CLIENT + 1)
        for user in ("u-alice", "u-bob", "u-carol"):
            assert len(counted.handle.sandbox.events_of(user)) == CALLS_PER_CLIENT
        # Each client alone keeps to qps; together they exceed it: what the shared bucket stops.
        assert QPS < observed <= CLIENTS * QPS + CLIENTS
        fallbacks = [e for e in logs if e["event"] == "dingtalk.pace.local"]
        assert len(fallbacks) == CLIENTS  # one per client: Redis is retried after retry_s
        assert all(e["log_level"] == "warning" for e in fallbacks)


async def test_pace_falls_back_while_redis_is_down_and_returns_after() -> None:
    """Redis stops: calls are paced locally (no error); once retry_s passed, Redis again."""
    server = start_redis()
    now = [0.0]
    redis = aredis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    key = keys.app_key(APP_KEY, keys.RATE)
    try:
        pace = RequestPace(redis, retry_s=5.0, clock=lambda: now[0])
        await pace.acquire(APP_KEY, 1000)
        assert await redis.exists(key)  # the shared bucket
        server.stop()
        with capture_logs() as logs:
            assert await pace.acquire(APP_KEY, 1000) == 0.0  # local, and no error
            await pace.acquire(APP_KEY, 1000)  # within retry_s: Redis is not even tried
        assert [e["event"] for e in logs if e["event"].startswith("dingtalk.pace")] == [
            "dingtalk.pace.local"
        ]
        server.start_again()  # empty: a fresh Redis
        now[0] = 6.0
        with capture_logs() as logs:
            await pace.acquire(APP_KEY, 1000)
        assert [e["event"] for e in logs if e["event"].startswith("dingtalk.pace")] == [
            "dingtalk.pace.shared_again"
        ]
        assert await redis.exists(key)
    finally:
        await redis.aclose()
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def test_local_bucket_paces_at_its_rate() -> None:
    """The in-memory bucket: one call at once, then one every 1/rate seconds."""
    bucket = LocalBucket(rate=4.0)
    assert bucket.reserve(10.0) == 0.0
    assert bucket.reserve(10.0) == pytest.approx(0.25)
    assert bucket.reserve(10.0) == pytest.approx(0.5)
    assert bucket.reserve(11.0) == pytest.approx(0.0)  # the debt was paid off by then
    assert bucket.reserve(20.0) == 0.0  # idle: at most one token saved up
    assert bucket.reserve(20.0) == pytest.approx(0.25)


def test_qps_must_be_positive() -> None:
    """A pace for zero calls per second is refused (config also requires qps > 0)."""
    with pytest.raises(ValueError, match="qps must be positive"):
        RequestPace(None).for_app(APP_KEY, 0)


def _app(**changes: object) -> dict[str, object]:
    callback = {"token": "t", "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
    return {"app_key": APP_KEY, "app_secret": "s", "callback": callback, **changes}


def test_qps_config_key_defaults_below_dingtalks_limit() -> None:
    """``dingtalk.qps``: default 15 (DingTalk allows 20/s per API), positive, in the schema."""
    assert DingTalkApp.model_validate(_app()).qps == 15.0
    assert DingTalkApp.model_validate(_app(qps=2.5)).qps == 2.5
    for bad in (0, -1, "fast"):
        with pytest.raises(ValidationError):
            DingTalkApp.model_validate(_app(qps=bad))
    prop = tenant_schema()["$defs"]["DingTalkApp"]["properties"]["qps"]
    assert (prop["default"], prop["exclusiveMinimum"]) == (15.0, 0)
    assert "per second" in prop["description"]


# --- real workers ----------------------------------------------------------------------------

ITEMS_PER_BINDING = 24


def _vevent(uid: str, summary: str, day: int) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
        f"DTSTART:202701{day:02d}T020000Z\r\nDTEND:202701{day:02d}T030000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _two_binding_config(
    root: Path, sandbox: SandboxHandle, urls: list[str], redis_url: str
) -> Path:
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nlog: {{format: console}}\n")
    (root / "tenants" / "acme.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: acme
            dingtalk:
              api_base: {sandbox.url}
              app_key: {APP_KEY}
              app_secret: {APP_SECRET}
              qps: {QPS}
              callback: {{token: {sandbox.callback_token}, aes_key: {sandbox.aes_key}}}
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
              - {{union_id: u-bob, email: bob@acme.example}}
            bindings:
              - id: alice-work
                dingtalk_user: u-alice
                caldav: {{url: "{urls[0]}", username: {USERNAME}, password: {PASSWORD}}}
              - id: bob-work
                dingtalk_user: u-bob
                caldav: {{url: "{urls[1]}", username: {USERNAME}, password: {PASSWORD}}}
            """
        )
    )
    return root


async def test_two_arq_workers_of_one_app_stay_under_its_qps(
    tmp_path: Path, radicale_server: CalDAVServer, redis_url: str
) -> None:
    """Two real workers reconciling two bindings of one app at once: at most qps per second."""
    calendars = [make_calendar(radicale_server) for _ in range(2)]
    for n, cal in enumerate(calendars):
        for i in range(ITEMS_PER_BINDING):
            status, _ = cal.put_raw(f"e{i}.ics", _vevent(f"b{n}-e{i}@test", f"b{n} #{i}", 1 + i))
            assert status == 201
    async with counting_sandbox() as counted:
        counted.handle.sandbox.set_faults(qps_limit=QPS)
        root = _two_binding_config(
            tmp_path / "config", counted.handle, [c.url for c in calendars], redis_url
        )
        config = load_config(root, {})
        workers = [create_worker(config, burst=True, poll=False, max_jobs=1) for _ in range(2)]
        redis = await create_pool(queue.redis_settings(redis_url))
        try:
            for binding in ("alice-work", "bob-work"):
                await queue.request_reconcile(redis, BindingRef("acme", binding), "test")
            started = time.monotonic()
            await asyncio.gather(*(w.main() for w in workers))
            seconds = time.monotonic() - started
        finally:
            for w in workers:
                await w.close()
            await redis.aclose()
        observed = per_second(c.at for c in counted.calls)
        print(
            f"\nrate limit (2 arq workers): configured qps={QPS} observed busiest second="
            f"{observed} calls={len(counted.calls)} in {seconds:.1f}s "
            f"throttled={counted.throttled}"
        )
        assert [w.jobs_complete for w in workers] == [1, 1]  # one binding each, in parallel
        for user in ("u-alice", "u-bob"):
            assert len(counted.handle.sandbox.events_of(user)) == ITEMS_PER_BINDING
        assert observed <= QPS
        assert counted.throttled == 0
