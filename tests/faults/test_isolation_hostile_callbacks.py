"""A volley of hostile callbacks leaves the webhook healthy, queues nothing, leaks nothing.

``test_webhook_faults.py`` checks each refusal on its own (status, metric, log line). This
replays the whole sample in one go against one running webhook, as an attacker would,
together with a 2 MB body and a verbatim replay of an accepted push, and then checks what
one case at a time cannot: the webhook still answers ``/healthz`` and ``/readyz`` and still
accepts a good push, no work was queued by the volley, and no secret (callback tokens,
EncodingAESKeys, app secrets) appears in any captured log line or anywhere in Redis.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from structlog.testing import capture_logs

from syncd import queue
from syncd.model import BindingRef
from syncd.store import keys
from tests.fixtures.hostile_pushes import CASES, PUSH
from tests.fixtures.sandbox import AES_KEY, APP_SECRET, CALLBACK_TOKEN
from tests.fixtures.webhook import (
    ARQ_QUEUE,
    GLOBEX_AES,
    GLOBEX_TOKEN,
    Hook,
    change_push,
    hook,
    sealed_push,
)

__all__ = ["hook"]  # the webhook fixture (tenants acme and globex, 2 KB body limit)

SECRETS = (CALLBACK_TOKEN, AES_KEY, APP_SECRET, GLOBEX_TOKEN, GLOBEX_AES, "globex-secret")
TWO_MB = 2 * 1024 * 1024


async def _redis_text(hook: Hook) -> str:
    """Every key and value in Redis, as one text to search."""
    parts = []
    async for raw in hook.redis.scan_iter("*"):
        key = raw.decode()
        kind = (await hook.redis.type(key)).decode()
        if kind == "string":
            value: object = await hook.redis.get(key)
        elif kind == "hash":
            value = await hook.redis.hgetall(key)
        elif kind == "list":
            value = await hook.redis.lrange(key, 0, -1)
        elif kind == "zset":
            value = await hook.redis.zrange(key, 0, -1, withscores=True)
        else:
            value = await hook.redis.smembers(key)
        parts.append(f"{key} {value!r}")
    return "\n".join(parts)


async def _accept_then_drain(hook: Hook) -> tuple[dict[str, str], bytes]:
    """A good push, accepted; then the queue emptied as a worker would. Returns the push."""
    query, body = sealed_push(json.dumps(change_push(["u-bob"], biz_id="biz-replayed")))
    status, answer = await hook.post("acme", query, body)
    hook.assert_success(status, answer)
    (job,) = await hook.queued()
    await hook.redis.delete(ARQ_QUEUE, "arq:job:" + job)
    await hook.redis.delete(keys.binding_key(BindingRef("acme", "bob-work"), keys.DIRTY))
    return query, body


async def test_hostile_volley_leaves_webhook_healthy_and_secrets_unseen(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """Every hostile request is refused with 4xx; a verbatim replay is acked without work;
    afterwards the webhook is healthy, nothing is queued, and no secret was logged or stored."""
    caplog.set_level(logging.DEBUG)
    replay_query, replay_body = await _accept_then_drain(hook)
    statuses: list[tuple[str, int]] = []
    with capture_logs() as logs:
        for _ in range(3):  # the sample, three times over
            for name, send, *_ in CASES:
                statuses.append((name, (await send(hook))[0]))
        query, _ = sealed_push(PUSH)
        # A stream, not raw bytes: aiohttp warns that a large bytes body blocks the loop.
        big, _ = await hook.post("acme", query, io.BytesIO(b'{"encrypt":"' + b"A" * TWO_MB))
        statuses.append(("2mb-body", big))
        replayed, answer = await hook.post("acme", replay_query, replay_body)

    assert [(n, s) for n, s in statuses if not 400 <= s < 500] == []
    assert big == 413
    hook.assert_success(replayed, answer)  # acked: DingTalk must not retry it
    assert [e["event"] for e in logs if e["event"].startswith("callback_dup")] == [
        "callback_duplicate"
    ]
    assert await hook.queued() == []  # neither the volley nor the replay queued work
    assert await hook.dirty() == []

    for path in ("/healthz", "/readyz"):
        async with hook.session.get(hook.url + path) as resp:
            assert resp.status == 200, path
    status, answer = await hook.push(change_push(["u-alice"]))  # still serving real pushes
    hook.assert_success(status, answer)
    assert queue.job_id_for(BindingRef("acme", "alice-work")) in await hook.queued()

    logged = "\n".join([repr(e) for e in logs] + [r.getMessage() for r in caplog.records])
    stored = await _redis_text(hook)
    print(f"\nhostile volley: {len(statuses)} requests, all 4xx; {len(logs)} log entries")
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in stored
