"""The webhook over real HTTP with real Redis: accepted pushes, dedupe, health, metrics, sandbox.

The webhook runs as ``tests/fixtures/webhook.py`` serves it (the real ``create_app`` on a
free loopback port); pushes are sealed and replies checked as DingTalk does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from syncd import crypto, queue
from syncd.model import BindingRef
from syncd.store import keys
from syncd_lab.stack.ports import free_port
from tests.fixtures.sandbox import (
    AES_KEY,
    APP_KEY,
    SandboxHandle,
    sandbox_token,
    start_sandbox,
)
from tests.fixtures.spine import Spine
from tests.fixtures.webhook import (
    ARQ_QUEUE,
    Hook,
    callback_counts,
    change_push,
    counted_since,
    running_hook,
    sealed_push,
    write_webhook_config,
)

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


async def test_reply_is_sealed_once_a_second_and_never_answers_a_forgery(hook: Hook) -> None:
    """Pushes in a row get the same sealed reply (one seal per tenant and second), globex
    its own; a forged push between them is still refused 403 and queues nothing."""
    status, first = await hook.push(change_push(["u-bob"]))
    hook.assert_success(status, first)
    query, body = sealed_push(json.dumps(change_push(["u-alice"], biz_id="forged-1")))
    status, refused = await hook.post("acme", {**query, "signature": "0" * 40}, body)
    assert status == 403
    assert "encrypt" not in refused
    status, second = await hook.push(change_push(["u-bob"]))
    hook.assert_success(status, second)
    status, globex = await hook.push(change_push(["u-alice"]), "globex")
    hook.assert_success(status, globex, "globex")
    if int(second["timeStamp"]) - int(first["timeStamp"]) < 1000:  # same reuse window
        assert second == first
    assert globex["encrypt"] != first["encrypt"]
    assert "forged-1" not in "".join(await hook.accepted_pushes())
    assert await hook.dirty() == ["acme/bob-work", "globex/g-alice"]


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
