"""The webhook over real HTTP with real Redis: accepted pushes, dedupe, health, metrics, sandbox.

The real ``create_app`` (its own arq pool on the test Redis) is served on a free loopback
port. Pushes are encrypted and signed with ``syncd.crypto.seal``, as DingTalk does; the
reply is checked the way DingTalk checks it. The helpers here are shared with
``tests/faults/test_webhook_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aredis
from aiohttp import web
from structlog.testing import capture_logs

from syncd import crypto, queue
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.observability import REGISTRY
from syncd.store import keys
from syncd.webhook.app import create_app
from syncd_lab.stack.ports import free_port
from tests.fixtures.sandbox import (
    AES_KEY,
    APP_KEY,
    APP_SECRET,
    CALLBACK_TOKEN,
    SandboxHandle,
    sandbox_token,
    start_sandbox,
)
from tests.fixtures.spine import Spine

MAX_BODY = 2048
MAX_SKEW_S = 120
GLOBEX_TOKEN = "globex-token"
GLOBEX_AES = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"  # 43 characters
ARQ_QUEUE = "arq:queue"


def write_webhook_config(root: Path, redis_url: str, api_base: str = "http://127.0.0.1:9") -> Path:
    """Two tenants: acme (alice-work, alice-home for u-alice; bob-work) and globex (g-alice)."""
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "syncd.yaml").write_text(
        f"redis_url: {redis_url}\ncallback_max_body: {MAX_BODY}\n"
        f"callback_max_skew: {MAX_SKEW_S}s\nlog: {{format: console}}\n"
    )
    (root / "tenants" / "acme.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: acme
            dingtalk:
              api_base: {api_base}
              app_key: {APP_KEY}
              app_secret: {APP_SECRET}
              callback: {{token: {CALLBACK_TOKEN}, aes_key: {AES_KEY}}}
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
              - {{union_id: u-bob, email: bob@acme.example}}
              - {{union_id: u-carol, email: carol@acme.example}}
            bindings:
              - {{id: alice-work, dingtalk_user: u-alice, caldav: {{url: "http://127.0.0.1:9/a/w/"}}}}
              - {{id: alice-home, dingtalk_user: u-alice, caldav: {{url: "http://127.0.0.1:9/a/h/"}}}}
              - {{id: bob-work, dingtalk_user: u-bob, caldav: {{url: "http://127.0.0.1:9/b/w/"}}}}
            """
        )
    )
    (root / "tenants" / "globex.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: globex
            dingtalk:
              api_base: http://127.0.0.1:9
              app_key: dingglobex
              app_secret: globex-secret
              callback: {{token: {GLOBEX_TOKEN}, aes_key: {GLOBEX_AES}}}
            directory:
              - {{union_id: u-alice, email: alice@globex.example}}
            bindings:
              - {{id: g-alice, dingtalk_user: u-alice, caldav: {{url: "http://127.0.0.1:9/g/"}}}}
            """
        )
    )
    return root


def change_push(
    union_ids: list[str], *, biz_id: str | None = None, camel: bool = False
) -> dict[str, Any]:
    """A decrypted calendar_event_change as DingTalk sends it (PascalCase, or camelCase)."""
    biz = biz_id or uuid.uuid4().hex
    fields = {
        "CalendarEventId": "ev-" + biz[:8],
        "CalendarEventUpdateTime": 1668735924619,
        "CalendarId": "NzE3",
        "UnionIdList": union_ids,
        "ChangeType": "updated",
    }
    if camel:
        fields = {k[0].lower() + k[1:]: v for k, v in fields.items()} | {"eventId": biz}
    return {
        "EventType": "calendar_event_change",
        "EventTime": 1668735924640,
        "CorpId": "dingcorp1",
        "BizId": biz,
        **fields,
        "operator": {"type": "user"},
    }


def sealed_push(
    plaintext: str,
    *,
    token: str = CALLBACK_TOKEN,
    aes_key: str = AES_KEY,
    owner_key: str = APP_KEY,
    timestamp: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Query parameters and JSON body of a push, encrypted and signed like DingTalk's."""
    sealed = crypto.seal(plaintext, token, aes_key, owner_key, timestamp=timestamp)
    query = {k: sealed[k] for k in ("signature", "timestamp", "nonce")}
    return query, json.dumps({"encrypt": sealed["encrypt"]}).encode()


def callback_counts(tenant: str) -> dict[str, float]:
    """Every ``syncd_callbacks_total`` sample of ``tenant``, by outcome."""
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "syncd_callbacks_total" and sample.labels["tenant"] == tenant:
                out[sample.labels["outcome"]] = sample.value
    return out


def counted_since(before: dict[str, float], tenant: str) -> dict[str, float]:
    """The outcomes of ``tenant`` that grew since ``before``, and by how much."""
    now = callback_counts(tenant)
    return {k: v - before.get(k, 0.0) for k, v in now.items() if v != before.get(k, 0.0)}


@dataclass
class Hook:
    """A running webhook: its base URL, an HTTP session and a client on its Redis."""

    url: str
    session: aiohttp.ClientSession
    redis: aredis.Redis
    config: Config

    async def post(
        self,
        tenant: str,
        query: dict[str, str],
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """POST to ``/callbacks/{tenant}``; returns the status and the JSON answer."""
        async with self.session.post(
            f"{self.url}/callbacks/{tenant}", params=query, data=body, headers=headers
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def push(self, plaintext: dict[str, Any] | str, tenant: str = "acme") -> tuple[int, Any]:
        """Seal ``plaintext`` with the tenant's keys and POST it."""
        text = plaintext if isinstance(plaintext, str) else json.dumps(plaintext)
        keys_of = {"acme": {}, "globex": {"token": GLOBEX_TOKEN, "aes_key": GLOBEX_AES}}
        owner = {"globex": {"owner_key": "dingglobex"}}.get(tenant, {})
        query, body = sealed_push(text, **keys_of.get(tenant, {}), **owner)
        return await self.post(tenant, query, body)

    async def queued(self) -> list[str]:
        """Job ids in arq's queue."""
        return sorted(j.decode() for j in await self.redis.zrange(ARQ_QUEUE, 0, -1))

    async def dirty(self) -> list[str]:
        """``tenant/binding`` of every binding with a dirty mark."""
        found = []
        for tenant, binding in self.config.bindings():
            ref = BindingRef(tenant.id, binding.id)
            if await self.redis.exists(keys.binding_key(ref, keys.DIRTY)):
                found.append(str(ref))
        return sorted(found)

    async def accepted_pushes(self) -> list[str]:
        """Dedupe keys of pushes the webhook has accepted."""
        return sorted(k.decode() for k in await self.redis.keys("syncd:*:push:*"))

    async def assert_nothing_queued(self) -> None:
        """No job in arq's queue, no dirty mark, no push remembered."""
        assert await self.queued() == []
        assert await self.dirty() == []
        assert await self.accepted_pushes() == []

    def assert_success(self, status: int, answer: Any, tenant: str = "acme") -> None:
        """200 with the encrypted ``success`` envelope, signed as DingTalk verifies it."""
        assert status == 200, answer
        cb = self.config.tenant(tenant).dingtalk.callback
        token, aes = cb.token.get_secret_value(), cb.aes_key.get_secret_value()
        owner = self.config.tenant(tenant).owner_key
        crypto.verify_signature(
            token, answer["timeStamp"], answer["nonce"], answer["encrypt"], answer["msg_signature"]
        )
        assert crypto.decrypt(answer["encrypt"], aes, owner) == "success"


@asynccontextmanager
async def serve_webhook(config: Config) -> AsyncIterator[str]:
    """Serve the real webhook app (with its own arq pool) on a free port; yields its URL."""
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def running_hook(
    root: Path, redis_url: str, api_base: str | None = None
) -> AsyncIterator[Hook]:
    """Write a config for ``redis_url``, serve the webhook, yield a :class:`Hook`."""
    if api_base is None:
        write_webhook_config(root, redis_url)
    else:
        write_webhook_config(root, redis_url, api_base)
    config = load_config(root, {})
    client = aredis.Redis.from_url(redis_url)
    async with serve_webhook(config) as url, aiohttp.ClientSession() as session:
        try:
            yield Hook(url, session, client, config)
        finally:
            await client.aclose()


@pytest.fixture
async def hook(tmp_path: Path, redis_url: str) -> AsyncIterator[Hook]:
    """The webhook on the session Redis (flushed), tenants acme and globex."""
    async with running_hook(tmp_path / "config", redis_url) as running:
        yield running


# --- accepted pushes -----------------------------------------------------------------------


async def test_check_url_answers_encrypted_success(hook: Hook) -> None:
    """check_url → 200 whose reply verifies and decrypts to 'success'; nothing is queued."""
    before = callback_counts("acme")
    with capture_logs() as logs:
        status, answer = await hook.push('{"EventType":"check_url"}')
    hook.assert_success(status, answer)
    assert set(answer) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert counted_since(before, "acme") == {"check_url": 1}
    assert [e["event"] for e in logs if e["event"].startswith("callback")] == ["callback_check_url"]
    await hook.assert_nothing_queued()


@pytest.mark.parametrize("camel", [False, True], ids=["PascalCase", "camelCase"])
async def test_change_marks_exactly_the_affected_bindings(hook: Hook, camel: bool) -> None:
    """A change for u-alice marks acme's two alice bindings dirty and queues their reconciles."""
    before = callback_counts("acme")
    with capture_logs() as logs:
        status, answer = await hook.push(change_push(["u-alice"], camel=camel))
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/alice-home", "acme/alice-work"]
    assert await hook.queued() == sorted(
        queue.job_id_for(BindingRef("acme", b)) for b in ("alice-home", "alice-work")
    )
    assert counted_since(before, "acme") == {"queued": 1}
    [entry] = [e for e in logs if e["event"] == "callback_queued"]
    assert sorted(entry["bindings"]) == ["alice-home", "alice-work"]
    assert len(await hook.accepted_pushes()) == 1


async def test_change_for_two_users(hook: Hook) -> None:
    """A change naming u-alice and u-bob queues all three of acme's bindings, not globex's."""
    status, answer = await hook.push(change_push(["u-bob", "u-alice"]))
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/alice-home", "acme/alice-work", "acme/bob-work"]
    assert len(await hook.queued()) == 3


async def test_change_without_binding_is_acknowledged_and_queues_nothing(hook: Hook) -> None:
    """A push for a user with no binding (u-carol) → 200 success, nothing queued or dirty."""
    before = callback_counts("acme")
    with capture_logs() as logs:
        status, answer = await hook.push(change_push(["u-carol", "u-nobody"]))
    hook.assert_success(status, answer)
    assert await hook.queued() == []
    assert await hook.dirty() == []
    assert counted_since(before, "acme") == {"no_binding": 1}
    assert any(e["event"] == "callback_queued" and e["bindings"] == [] for e in logs)


async def test_other_event_types_are_acknowledged_and_ignored(hook: Hook) -> None:
    """An event type syncd does not handle → 200 success (no DingTalk retries), nothing queued."""
    before = callback_counts("acme")
    status, answer = await hook.push({"EventType": "user_add_org", "BizId": "b-1"})
    hook.assert_success(status, answer)
    assert counted_since(before, "acme") == {"ignored": 1}
    await hook.assert_nothing_queued()


async def test_same_push_twice_is_a_duplicate(hook: Hook) -> None:
    """The same BizId again → 200 success, counted as duplicate, and no new job or mark."""
    push = change_push(["u-bob"], biz_id="biz-dup-1")
    status, answer = await hook.push(push)
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/bob-work"]
    # As if a worker had run the job: the queue and the mark are gone.
    await hook.redis.delete(ARQ_QUEUE, "arq:job:" + (await hook.queued())[0])
    await hook.redis.delete(keys.binding_key(BindingRef("acme", "bob-work"), keys.DIRTY))
    before = callback_counts("acme")
    with capture_logs() as logs:
        status, answer = await hook.push(push)  # a fresh envelope of the same push
    hook.assert_success(status, answer)
    assert counted_since(before, "acme") == {"duplicate": 1}
    assert [e["push_id"] for e in logs if e["event"] == "callback_duplicate"] == ["biz-dup-1"]
    assert await hook.queued() == []
    assert await hook.dirty() == []


async def test_same_biz_id_in_two_tenants_is_not_a_duplicate(hook: Hook) -> None:
    """Dedupe is per tenant: globex's push with acme's BizId is queued for globex."""
    status, answer = await hook.push(change_push(["u-alice"], biz_id="shared-id"))
    hook.assert_success(status, answer)
    status, answer = await hook.push(change_push(["u-alice"], biz_id="shared-id"), "globex")
    hook.assert_success(status, answer, "globex")
    assert "globex/g-alice" in await hook.dirty()


async def test_legacy_query_spellings_are_accepted(hook: Hook) -> None:
    """``msg_signature`` and ``timeStamp`` (legacy spellings) are accepted like the new ones."""
    query, body = sealed_push(json.dumps(change_push(["u-bob"])))
    legacy = {
        "msg_signature": query["signature"],
        "timeStamp": query["timestamp"],
        "nonce": query["nonce"],
    }
    status, answer = await hook.post("acme", legacy, body)
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/bob-work"]


async def test_body_sent_in_slow_chunks_is_read_whole(hook: Hook) -> None:
    """A valid body sent chunked, in pieces with pauses, is read to the end and accepted."""
    query, body = sealed_push(json.dumps(change_push(["u-bob"])))

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 40):
            yield body[i : i + 40]
            await asyncio.sleep(0.01)

    status, answer = await hook.post("acme", query, pieces())
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/bob-work"]


async def test_many_concurrent_pushes_for_one_binding_coalesce(hook: Hook) -> None:
    """50 concurrent distinct pushes for u-bob → all 200, one job queued, 50 pushes remembered."""
    results = await asyncio.gather(*(hook.push(change_push(["u-bob"])) for _ in range(50)))
    for status, answer in results:
        hook.assert_success(status, answer)
    assert await hook.queued() == [queue.job_id_for(BindingRef("acme", "bob-work"))]
    assert len(await hook.accepted_pushes()) == 50


# --- health and metrics --------------------------------------------------------------------


async def test_healthz_and_readyz(hook: Hook) -> None:
    """/healthz is 200; /readyz is 200 with Redis reachable and reports the tenants."""
    async with hook.session.get(hook.url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
    async with hook.session.get(hook.url + "/readyz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ready", "tenants": 2}


async def test_metrics_serves_prometheus_text(hook: Hook) -> None:
    """/metrics is Prometheus text with syncd_callbacks_total counting this test's push."""
    await hook.push('{"EventType":"check_url"}')
    async with hook.session.get(hook.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert "# TYPE syncd_callbacks_total counter" in text
    assert 'syncd_callbacks_total{outcome="check_url",tenant="acme"}' in text


# --- the real sandbox pushing ----------------------------------------------------------------


@pytest.mark.parametrize("camel", [False, True], ids=["PascalCase", "camelCase"])
async def test_sandbox_push_is_accepted_and_queued(
    tmp_path: Path, redis_url: str, camel: bool
) -> None:
    """The sandbox's own signed push for a new event → sent (not failed), reconciles queued."""
    async with (
        start_sandbox(camel_case=camel) as sandbox,
        running_hook(tmp_path / "config", redis_url, sandbox.url) as hook,
    ):
        sandbox.sandbox.set_callback(sandbox.app_key, hook.url + "/callbacks/acme")
        await _create_event(sandbox, hook.session, "u-alice")
        await sandbox.sandbox.drain()
        callbacks = sandbox.sandbox.stats()["callbacks"]
        assert (callbacks["sent"], callbacks["failed"], callbacks["retries"]) == (1, 0, 0)
        assert await hook.dirty() == ["acme/alice-home", "acme/alice-work"]
        assert len(await hook.queued()) == 2


async def test_sandbox_url_check_succeeds(tmp_path: Path, redis_url: str) -> None:
    """The sandbox's console-style registration (check_url) accepts our webhook URL."""
    async with (
        start_sandbox() as sandbox,
        running_hook(tmp_path / "config", redis_url, sandbox.url) as hook,
    ):
        url = hook.url + "/callbacks/acme"
        assert await sandbox.sandbox.register_callback(sandbox.app_key, url)
        assert not await sandbox.sandbox.register_callback(sandbox.app_key, url + "x")


async def _create_event(sandbox: SandboxHandle, session: aiohttp.ClientSession, user: str) -> None:
    token = await sandbox_token(sandbox)
    body = {
        "summary": "Planning",
        "start": {"dateTime": "2027-01-20T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": "2027-01-20T11:00:00+08:00", "timeZone": "Asia/Shanghai"},
    }
    async with session.post(
        sandbox.calendar_url(user), json=body, headers={"x-acs-dingtalk-access-token": token}
    ) as resp:
        assert resp.status == 200, await resp.text()


# --- a burst through the whole product --------------------------------------------------------


@pytest.mark.parametrize("caldav_calendar", ["radicale"], indirect=True)
async def test_burst_of_pushes_costs_at_most_two_reconciles(spine: Spine) -> None:
    """100 pushes for one binding within a moment → a burst worker reconciles at most twice."""
    cb = spine.config.tenant("acme").dingtalk.callback
    token, aes = cb.token.get_secret_value(), cb.aes_key.get_secret_value()

    async def push(session: aiohttp.ClientSession) -> int:
        query, body = sealed_push(json.dumps(change_push(["u-alice"])), token=token, aes_key=aes)
        async with session.post(spine.webhook_url, params=query, data=body) as resp:
            return resp.status

    # Slow DingTalk down so the burst surely lands before a second run could start.
    spine.sandbox.sandbox.set_faults(latency_ms=250)
    async with aiohttp.ClientSession() as session:
        first = await push(session)
        with capture_logs() as logs:
            statuses = await asyncio.gather(spine.run_worker(), *(push(session) for _ in range(99)))
            await spine.settle()
    assert [first, *statuses[1:]] == [200] * 100
    runs = [e for e in logs if e["event"] == "reconciled"]
    assert 1 <= len(runs) <= 2, runs
    assert await spine.pool.zcard(ARQ_QUEUE) == 0


# --- the long-running commands ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["web", "run"])
async def test_syncd_web_serves_and_stops_on_sigterm(
    tmp_path: Path, redis_url: str, command: str
) -> None:
    """``syncd web``/``run`` answer readiness and a check_url push, then exit 0 on SIGTERM."""
    root = write_webhook_config(tmp_path / "config", redis_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCD_REDIS_URL", "SYNCD_CONFIG")}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "syncd"),
        command,
        "--config",
        str(root),
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await _until_ready(session, f"http://127.0.0.1:{port}/readyz")
            query, body = sealed_push('{"EventType":"check_url"}')
            async with session.post(
                f"http://127.0.0.1:{port}/callbacks/acme", params=query, data=body
            ) as resp:
                assert resp.status == 200
                reply = await resp.json()
        assert crypto.decrypt(reply["encrypt"], AES_KEY, APP_KEY) == "success"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert out == b""  # logs go to stderr
    assert b"Traceback" not in err


async def _until_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        assert time.monotonic() < deadline, f"{url} never became ready"
        await asyncio.sleep(0.1)
