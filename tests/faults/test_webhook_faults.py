"""The webhook refuses what it must: forged, replayed, malformed, oversized, unknown; Redis down.

Every refusal is checked four ways: the documented status, nothing queued (arq's queue,
dirty marks and push-dedupe keys all empty), one ``syncd_callbacks_total`` increment with
the refusal's outcome, and a ``callback_rejected`` log entry.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from syncd import queue
from syncd.model import BindingRef
from syncd_lab.stack.ports import free_port
from tests.fixtures.hostile_pushes import CASES, PUSH, Send
from tests.fixtures.processes import start_syncd
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.fixtures.webhook import (
    MAX_BODY,
    Hook,
    callback_counts,
    change_push,
    counted_since,
    running_hook,
    sealed_push,
    write_webhook_config,
)

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test


@pytest.mark.parametrize(
    ("send", "status", "tenant", "outcome"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_refused(hook: Hook, send: Send, status: int, tenant: str, outcome: str) -> None:
    """The request gets its documented 4xx, queues nothing, is counted and logged."""
    before = callback_counts(tenant)
    with capture_logs() as logs:
        got, answer = await send(hook)
    assert got == status, answer
    assert answer["error"] == outcome.removeprefix("rejected_")
    assert "encrypt" not in answer
    await hook.assert_nothing_queued()
    assert counted_since(before, tenant) == {outcome: 1}
    [entry] = [e for e in logs if e["event"] == "callback_rejected"]
    assert entry["status"] == status
    assert entry["log_level"] == "warning"
    assert entry["reason"]


async def test_body_at_the_limit_is_accepted(hook: Hook) -> None:
    """A push padded to exactly callback_max_body bytes is accepted; one byte more is 413."""
    query, body = sealed_push(PUSH)
    exact = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
    assert len(exact) == MAX_BODY
    status, answer = await hook.post("acme", query, exact)
    hook.assert_success(status, answer)
    status, _ = await hook.post("acme", query, exact[:-1] + b" }")
    assert status == 413


async def test_refusals_leave_later_pushes_working(hook: Hook) -> None:
    """After a volley of bad requests a good push is still accepted and queued."""
    for _, send, *_ in CASES:
        await send(hook)
    status, answer = await hook.push(PUSH)
    hook.assert_success(status, answer)
    assert len(await hook.queued()) == 3


# --- Redis unreachable -----------------------------------------------------------------------


async def test_redis_down_is_503_then_the_retry_is_queued(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """Redis down → 503 (never success) and nothing remembered; the same push after → queued."""
    async with running_hook(tmp_path / "config", own_redis.url) as hook:
        query, body = sealed_push(PUSH)
        own_redis.stop()
        before = callback_counts("acme")
        with capture_logs() as logs:
            started = time.monotonic()
            status, answer = await hook.post("acme", query, body)
            elapsed = time.monotonic() - started
        assert status == 503, answer
        assert "encrypt" not in answer
        assert elapsed < 1.5  # DingTalk's reply deadline: fail fast, it will retry
        assert counted_since(before, "acme") == {"store_unavailable": 1}
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["callback_not_stored"]

        own_redis.start_again()  # empty: nothing was stored while it was down
        status, answer = await hook.post("acme", query, body)  # DingTalk's retry, same push
        hook.assert_success(status, answer)
        assert await hook.dirty() == ["acme/alice-home", "acme/alice-work", "acme/bob-work"]
        assert queue.job_id_for(BindingRef("acme", "bob-work")) in await hook.queued()
        assert len(await hook.accepted_pushes()) == 1


async def test_check_url_without_redis_still_succeeds(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """URL verification stores nothing, so it is answered even while Redis is down."""
    async with running_hook(tmp_path / "config", own_redis.url) as hook:
        own_redis.stop()
        status, answer = await hook.push('{"EventType":"check_url"}')
        hook.assert_success(status, answer)


async def test_readyz_follows_redis(tmp_path: Path, own_redis: RedisServer) -> None:
    """/readyz: 200 with Redis, 503 while it is down, 200 once it is back; /healthz stays 200."""
    async with running_hook(tmp_path / "config", own_redis.url) as hook:

        async def probe(path: str) -> int:
            async with hook.session.get(hook.url + path) as resp:
                return resp.status

        assert await probe("/readyz") == 200
        own_redis.stop()
        assert await probe("/readyz") == 503
        assert await probe("/healthz") == 200
        own_redis.start_again()
        assert await probe("/readyz") == 200


def test_cases_cover_every_documented_status() -> None:
    """The refusal table covers 400, 403, 404 and 413 (guards against a trimmed table)."""
    assert {c[2] for c in CASES} == {400, 403, 404, 413}
    assert len({c[0] for c in CASES}) == len(CASES)


async def test_unqueueable_job_is_503_and_not_remembered(hook: Hook) -> None:
    """If Redis refuses every job id (kept results block them), the push gets 503, not success."""
    ref = BindingRef("acme", "bob-work")
    for generation in range(5):
        await hook.redis.set("arq:result:" + queue.job_id_for(ref, generation), b"x")
    before = callback_counts("acme")
    status, answer = await hook.push(change_push(["u-bob"]))
    assert status == 503, answer
    assert "encrypt" not in answer
    assert counted_since(before, "acme") == {"store_error": 1}
    assert await hook.accepted_pushes() == []  # DingTalk's retry will be processed again


async def _status(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(kwargs.pop("method", "GET"), url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("command", ["web", "worker"])
async def test_syncd_without_redis_waits_for_it(tmp_path: Path, command: str) -> None:
    """``syncd web``/``worker`` started while Redis is down keep running and serve once it is up.

    The webhook answers ``/healthz`` 200 but ``/readyz`` and callbacks 503 (never
    ``success``) until Redis starts, then 200 and ``success``; the worker waits and starts
    working. Each logs ``redis_lost`` and ``redis_back`` once, no traceback, and SIGTERM
    still ends it with exit 0.
    """
    port, listen = free_port(), free_port()
    root = write_webhook_config(tmp_path / "config", f"redis://127.0.0.1:{port}/0")
    yaml = (root / "syncd.yaml").read_text().replace("format: console", "format: json")
    (root / "syncd.yaml").write_text(yaml)
    args = ("--listen", f"127.0.0.1:{listen}") if command == "web" else ()
    proc = await start_syncd(command, root, *args, log_dir=tmp_path)
    base, server = f"http://127.0.0.1:{listen}", None
    query, body = sealed_push(PUSH)
    try:
        await proc.wait_logged("redis_lost", within=30)
        async with aiohttp.ClientSession() as session:
            if command == "web":
                assert (await _status(session, base + "/healthz"))[0] == 200
                assert (await _status(session, base + "/readyz"))[0] == 503
                url = f"{base}/callbacks/acme"
                status, answer = await _status(session, url, method="POST", params=query, data=body)
                assert (status, "encrypt" in answer) == (503, False)
            server = await asyncio.to_thread(start_redis, port=port)
            await proc.wait_logged("redis_back", within=30)
            if command == "web":
                assert (await _status(session, base + "/readyz"))[0] == 200
                status, answer = await _status(session, url, method="POST", params=query, data=body)
                assert status == 200, answer
                assert "encrypt" in answer
            else:
                await proc.wait_logged("worker_started", within=30)
        proc.send(signal.SIGTERM)
        assert await proc.exited(within=30) == 0
    finally:
        await proc.kill()
        if server is not None:
            server.stop()
    assert len(proc.named("redis_lost")) == 1
    assert len(proc.named("redis_back")) == 1
    assert "Traceback" not in proc.text()
