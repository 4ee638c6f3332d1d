"""The webhook during its shutdown: not ready, still queueing, then 503 — never a false success.

The real app on loopback with its own Redis client: once aiohttp starts the shutdown
(``on_shutdown``) ``/readyz`` answers 503 so a load balancer moves on, while callbacks
already arriving are still queued and acknowledged; once the Redis client is closing
(``on_cleanup``) a callback gets 503 and nothing is remembered, so DingTalk retries it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aredis
from aiohttp import web

from syncd.config import load_config
from syncd.webhook.app import create_app
from syncd_lab.stack.ports import free_port
from tests.faults.test_webhook_faults import PUSH
from tests.integration.test_webhook import Hook, sealed_push, write_webhook_config


@pytest.fixture
async def served(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[web.Application, Hook]]:
    """The webhook app (its own Redis client) served on a free port, and a Hook on it."""
    config = load_config(write_webhook_config(tmp_path / "config", redis_url), {})
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = aredis.Redis.from_url(redis_url)
    async with aiohttp.ClientSession() as session:
        try:
            yield app, Hook(f"http://127.0.0.1:{port}", session, client, config)
        finally:
            await client.aclose()
            await runner.cleanup()


async def _readyz(hook: Hook) -> int:
    async with hook.session.get(hook.url + "/readyz") as resp:
        return resp.status


async def test_draining_is_not_ready_but_still_queues(
    served: tuple[web.Application, Hook],
) -> None:
    """After on_shutdown: /readyz 503, /healthz 200, and a callback is queued and acked."""
    app, hook = served
    assert await _readyz(hook) == 200
    await app.shutdown()
    assert await _readyz(hook) == 503
    async with hook.session.get(hook.url + "/healthz") as resp:
        assert resp.status == 200
    status, answer = await hook.push(PUSH)
    hook.assert_success(status, answer)
    assert await hook.dirty() == ["acme/alice-home", "acme/alice-work", "acme/bob-work"]


async def test_closed_client_answers_503_and_remembers_nothing(
    served: tuple[web.Application, Hook],
) -> None:
    """After on_cleanup closed the Redis client, a callback gets 503 and leaves no trace."""
    app, hook = served
    await app.shutdown()
    await app.cleanup()
    query, body = sealed_push(PUSH)
    status, answer = await hook.post("acme", query, body)
    assert status == 503, answer
    assert answer == {"error": "store_unavailable"}
    await hook.assert_nothing_queued()
