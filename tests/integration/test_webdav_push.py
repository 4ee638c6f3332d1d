"""WebDAV-Push: a real Xandikos (``--webdav-push``) tells syncd of a CalDAV change at once.

The real web app serves push resources over https (a private CA that Xandikos is told to
trust: :mod:`syncd_lab.stack.xandikos_push`), real arq workers register the subscriptions
and run the reconciles, the DingTalk sandbox receives the copies. Polls are set to an hour
(fixed: no fast polls after a change), so an edit that reaches DingTalk in seconds came by
push. Forged tokens are refused; a failed registration leaves the binding on its polls;
a renewal keeps one subscription per binding.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import structlog
import yaml
from aiohttp import web
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.config import CalDAVSource, Config, load_config
from syncd.model import BindingRef
from syncd.observability import WEBDAV_PUSH_REGISTRATIONS, WEBDAV_PUSHES
from syncd.store import keys
from syncd.store import webdav_push as record
from syncd.store.redis import RedisStore
from syncd.webhook.app import create_app
from syncd.worker import push
from syncd.worker.settings import create_worker
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import (
    CalDAVServer,
    CalendarHandle,
    make_calendar,
    start_xandikos_push,
)
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.spine import REF, STANDUP_ICS, write_config
from tests.fixtures.tls import LoopbackTls, make_loopback_tls

HOUR_POLLS = {"poll_interval": "1h"}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LoopbackTls:
    return make_loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def push_server(tls: LoopbackTls) -> Iterator[CalDAVServer]:
    """One Xandikos with WebDAV-Push for the module."""
    server = start_xandikos_push(tls.ca)
    yield server
    server.remove()


@dataclass
class World:
    config: Config
    calendar: CalendarHandle
    sandbox: SandboxHandle
    pool: ArqRedis
    public_url: str
    tls: LoopbackTls

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls.ca))

    async def post(self, path: str) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.public_url + path, data=b"x", ssl=self.client_ssl()) as answer,
        ):
            return answer.status


def _configure(root: Path, public_url: str, lifetime: str = "7d") -> Config:
    """Add ``webdav_push`` and a fixed hourly poll to a written config dir; load it."""
    path = root / "syncd.yaml"
    data = yaml.safe_load(path.read_text())
    data["webdav_push"] = {"public_url": public_url, "lifetime": lifetime}
    data["poll_cadence"] = {"fast": "1h", "idle_factor": 1}
    path.write_text(yaml.safe_dump(data))
    return load_config(root, {})


@pytest.fixture
async def world(
    tmp_path: Path,
    sandbox: SandboxHandle,
    redis_url: str,
    push_server: CalDAVServer,
    tls: LoopbackTls,
) -> AsyncIterator[World]:
    """syncd web on http (DingTalk callbacks) and https (push resources), one binding of
    u-alice to a fresh calendar on the push-enabled Xandikos."""
    calendar = make_calendar(push_server)
    https_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}"
    root = write_config(tmp_path / "config", sandbox, calendar.url, redis_url, **HOUR_POLLS)
    config = _configure(root, public_url)
    pool = await create_pool(queue.redis_settings(redis_url))
    runner = web.AppRunner(create_app(config, pool))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", https_port, ssl_context=tls.server_context()).start()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    sandbox.sandbox.set_callback(sandbox.app_key, f"http://127.0.0.1:{http_port}/callbacks/acme")
    yield World(config, calendar, sandbox, pool, public_url, tls)
    await runner.cleanup()
    await pool.aclose()


def _count(metric: object, tenant: str, outcome: str) -> float:
    return metric.labels(tenant, outcome)._value.get()  # type: ignore[attr-defined, no-any-return]


async def _until(check: object, within: float, what: str) -> float:
    """Seconds until ``check()`` (sync or async) is true; fails after ``within`` s."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        got = check()  # type: ignore[operator]
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within}s: {what}")


def _summaries(world: World) -> list[str]:
    events = world.sandbox.sandbox.events_of("u-alice")
    return [str(e.get("summary")) for e in events if e.get("status") != "cancelled"]


def _subscriptions(server: CalDAVServer, calendar: CalendarHandle) -> list[dict[str, object]]:
    """The subscriptions Xandikos keeps for ``calendar`` (its own JSON file)."""
    name = calendar.path.rstrip("/").rsplit("/", 1)[-1]
    found = list(server.workdir.glob(f"storage/**/{name}/push-subscriptions.json"))
    if not found:
        return []
    data = json.loads(found[0].read_text())
    return list(data["subscriptions"].values())


async def test_an_edit_on_xandikos_reaches_dingtalk_in_seconds_with_hourly_polls(
    world: World, push_server: CalDAVServer
) -> None:
    """The worker registers the binding's subscription; then an event PUT straight on
    Xandikos is in DingTalk within seconds, though the binding polls once an hour."""
    queued = _count(WEBDAV_PUSHES, "acme", "queued")
    worker = create_worker(world.config)
    running = asyncio.create_task(worker.main())
    try:
        await _until(lambda: _registered(world), 20, "the subscription is registered")
        await _until(lambda: _idle(world), 20, "the first poll is done")
        [subscription] = _subscriptions(push_server, world.calendar)
        assert str(subscription["push_resource"]).startswith(world.public_url + "/webdav-push/")
        put = world.calendar.put_raw(
            "standup.ics", STANDUP_ICS.format(summary="Standup", location="4")
        )
        assert put[0] in (201, 204)
        took = await _until(lambda: "Standup" in _summaries(world), 15, "the edit reaches DingTalk")
        print(f"\nCalDAV edit -> DingTalk by WebDAV-Push: {took:.2f} s")
        assert _count(WEBDAV_PUSHES, "acme", "queued") > queued
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()


async def _registered(world: World) -> bool:
    return (await record.read(world.pool, REF)).expires > time.time()


async def _idle(world: World) -> bool:
    """The first run finished (its status is ok) and none is running."""
    status = await RedisStore(world.pool).get_status(REF)
    return status.state == "ok" and not await world.pool.exists(keys.binding_key(REF, keys.RUNNING))


async def test_a_forged_token_or_binding_is_refused(world: World) -> None:
    """404 for a wrong token, an unknown binding or tenant, counted and logged, nothing
    queued; the binding's own token queues a reconcile (201) that does not list DingTalk."""
    await record.write(world.pool, REF, token="the-right-token")
    rejected = _count(WEBDAV_PUSHES, "acme", "rejected_unknown")
    with structlog.testing.capture_logs() as logs:
        assert await world.post("/webdav-push/acme/alice-work/forged") == 404
        assert await world.post("/webdav-push/acme/nobody/the-right-token") == 404
        assert await world.post("/webdav-push/evil/alice-work/the-right-token") == 404
    assert _count(WEBDAV_PUSHES, "acme", "rejected_unknown") == rejected + 2
    assert _count(WEBDAV_PUSHES, "_unknown", "rejected_unknown") >= 1
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["webdav_push_rejected"] * 3
    assert not await world.pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert await world.post("/webdav-push/acme/alice-work/the-right-token") == 201
    assert await world.pool.exists(keys.binding_key(REF, keys.DIRTY))
    assert not await world.pool.exists(keys.binding_key(REF, keys.PUSHED))  # quiet


async def test_a_failed_registration_leaves_the_binding_on_its_polls(
    world: World, radicale_server: CalDAVServer
) -> None:
    """Xandikos refuses a push resource that is not https (403): one log line, the
    ``failed`` metric, a retry in FAILED_RETRY_S; a server without WebDAV-Push (Radicale)
    is ``unsupported``; either way a poll still copies the edit."""
    push_settings = world.config.settings.webdav_push
    assert push_settings is not None
    plain = push_settings.model_copy(update={"public_url": "http://127.0.0.1:9"})
    dav = world.config.binding("acme", "alice-work").caldav
    assert dav is not None
    failed = _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "failed")
    now = time.time()
    with structlog.testing.capture_logs() as logs:
        again = await push.keep_one(world.pool, REF, dav, plain, now)
    assert again == now + push.FAILED_RETRY_S
    assert _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "failed") == failed + 1
    [line] = [e for e in logs if e["event"] == "webdav_push_register_failed"]
    assert line["error"].endswith("Forbidden")  # Xandikos: push-resource must use https
    assert (await record.read(world.pool, REF)).renew_at == again
    # due again only then: nothing is sent before
    assert await push.keep_one(world.pool, REF, dav, plain, now + 1) == again

    other = make_calendar(radicale_server)
    unsupported = _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "unsupported")
    source = CalDAVSource(url=other.url, username=other.username, password=other.password)
    later = await push.keep_one(world.pool, BindingRef("acme", "other"), source, push_settings, now)
    assert later == now + push.UNSUPPORTED_RETRY_S
    assert _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "unsupported") == unsupported + 1

    world.calendar.put_raw("standup.ics", STANDUP_ICS.format(summary="Polled", location="4"))
    await queue.request_reconcile(world.pool, REF, "poll")
    burst = create_worker(world.config, burst=True, poll=False)
    try:
        await burst.main()
    finally:
        await burst.close()
    assert "Polled" in _summaries(world)


async def test_renewal_keeps_one_subscription_and_its_url(
    world: World, push_server: CalDAVServer
) -> None:
    """Half-way to its expiry the subscription is registered again with the same push
    resource: Xandikos answers 200 (renewed) and still keeps one subscription, expiring later."""
    short = world.config.settings.webdav_push
    assert short is not None
    short = short.model_copy(update={"lifetime": 600.0})
    dav = world.config.binding("acme", "alice-work").caldav
    assert dav is not None
    now = time.time()
    renew_at = await push.keep_one(world.pool, REF, dav, short, now)
    first = await record.read(world.pool, REF)
    assert first.expires == pytest.approx(now + 600, abs=2)
    assert renew_at == pytest.approx(now + 300, abs=2)
    assert await push.keep_one(world.pool, REF, dav, short, now + 100) == renew_at  # not yet
    renewed = _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "renewed")
    await push.keep_one(world.pool, REF, dav, short, renew_at + 1)
    second = await record.read(world.pool, REF)
    assert _count(WEBDAV_PUSH_REGISTRATIONS, "acme", "renewed") == renewed + 1
    assert second.token == first.token
    assert second.expires > first.expires
    [subscription] = _subscriptions(push_server, world.calendar)
    assert str(subscription["push_resource"]).endswith("/" + first.token)


async def test_redis_down_refuses_a_message_with_503_and_registration_waits(
    tmp_path: Path,
    sandbox: SandboxHandle,
    own_redis: RedisServer,
    push_server: CalDAVServer,
    tls: LoopbackTls,
) -> None:
    """Redis unreachable: a push message is answered 503 (counted, logged: the binding's
    next poll finds the change) and a registration is tried again a tick later."""
    calendar = make_calendar(push_server)
    port = free_port()
    root = write_config(tmp_path / "config", sandbox, calendar.url, own_redis.url, **HOUR_POLLS)
    config = _configure(root, f"https://127.0.0.1:{port}")
    pool = await create_pool(queue.redis_settings(own_redis.url))
    runner = web.AppRunner(create_app(config, pool))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context()).start()
    world = World(config, calendar, sandbox, pool, f"https://127.0.0.1:{port}", tls)
    try:
        await record.write(pool, REF, token="the-right-token")
        own_redis.stop()
        before = _count(WEBDAV_PUSHES, "acme", "store_unavailable")
        with structlog.testing.capture_logs() as logs:
            assert await world.post("/webdav-push/acme/alice-work/the-right-token") == 503
            dav = config.binding("acme", "alice-work").caldav
            assert dav is not None
            assert config.settings.webdav_push is not None
            now = time.time()
            again = await push.keep_one(pool, REF, dav, config.settings.webdav_push, now)
        assert _count(WEBDAV_PUSHES, "acme", "store_unavailable") == before + 1
        assert again == now + push.TICK_SECONDS
        events = [e["event"] for e in logs if e["event"].startswith("webdav_push")]
        assert events == ["webdav_push_not_stored", "webdav_push_not_stored"]
        assert _subscriptions(push_server, calendar) == []  # nothing registered blind
    finally:
        await runner.cleanup()
        await pool.aclose()


async def test_a_tick_registers_only_what_is_due(world: World, push_server: CalDAVServer) -> None:
    """The cron's work: the first tick registers the binding; later ticks, and a worker
    that starts afresh (its records read back from Redis), register nothing until renewal."""
    keeper = push.PushKeeper()
    assert await push.keep_due(world.pool, keeper, world.config) == 1
    assert len(_subscriptions(push_server, world.calendar)) == 1
    assert await push.keep_due(world.pool, keeper, world.config) == 0
    assert await push.keep_due(world.pool, push.PushKeeper(), world.config) == 0
    before = (await record.read(world.pool, REF)).renew_at
    assert keeper.next_check[REF] == before
