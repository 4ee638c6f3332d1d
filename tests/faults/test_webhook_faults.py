"""The webhook refuses what it must: forged, replayed, malformed, oversized, unknown; Redis down.

Every refusal is checked four ways: the documented status, nothing queued (arq's queue,
dirty marks and push-dedupe keys all empty), one ``syncd_callbacks_total`` increment with
the refusal's outcome, and a ``callback_rejected`` log entry.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from structlog.testing import capture_logs

from syncd import crypto, queue
from syncd.model import BindingRef
from syncd_lab.stack.ports import free_port
from tests.fixtures.processes import start_syncd
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.fixtures.sandbox import AES_KEY, APP_KEY, CALLBACK_TOKEN
from tests.integration.test_webhook import (
    GLOBEX_AES,
    GLOBEX_TOKEN,
    MAX_BODY,
    MAX_SKEW_S,
    Hook,
    callback_counts,
    change_push,
    counted_since,
    hook,
    running_hook,
    sealed_push,
    write_webhook_config,
)

pytestmark = pytest.mark.usefixtures("syncd_reaper")  # no syncd child outlives its test

__all__ = ["hook"]  # the fixture, shared with the acceptance tests

PUSH = json.dumps(change_push(["u-alice", "u-bob"]))

Send = Callable[[Hook], Awaitable[tuple[int, Any]]]


def _ms(seconds_from_now: float) -> str:
    return str(int((time.time() + seconds_from_now) * 1000))


def _with(query: dict[str, str], **changes: str | None) -> dict[str, str]:
    out = {**query, **{k: v for k, v in changes.items() if v is not None}}
    return {k: v for k, v in out.items() if changes.get(k, "") is not None}


def _signed_encrypt(encrypt: str, timestamp: str | None = None) -> tuple[dict[str, str], bytes]:
    """A correctly signed request whose ``encrypt`` is the given text."""
    ts, nonce = timestamp or _ms(0), "n0nce"
    sig = crypto.signature(CALLBACK_TOKEN, ts, nonce, encrypt)
    query = {"signature": sig, "timestamp": ts, "nonce": nonce}
    return query, json.dumps({"encrypt": encrypt}).encode()


async def _post(hook: Hook, query: dict[str, str], body: Any, tenant: str = "acme") -> Any:
    return await hook.post(tenant, query, body)


def _forged(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH)
    return _post(hook, _with(query, signature="0" * 40), body)


def _other_token(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, token="not-the-token")
    return _post(hook, query, body)


def _tampered_body(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, _ = sealed_push(PUSH)
    _, other_body = sealed_push(PUSH)
    return _post(hook, query, other_body)


def _expired(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, timestamp=_ms(-(MAX_SKEW_S + 60)))
    return _post(hook, query, body)


def _future(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, timestamp=_ms(MAX_SKEW_S + 60))
    return _post(hook, query, body)


def _seconds_not_ms(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, timestamp=str(int(time.time())))
    return _post(hook, query, body)


def _non_numeric(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, timestamp="yesterday")
    return _post(hook, query, body)


def _timestamp(value: str) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        query, body = sealed_push(PUSH, timestamp=value)
        return _post(hook, query, body)

    return send


def _signature(value: str) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        query, body = sealed_push(PUSH)
        return _post(hook, {**query, "signature": value}, body)

    return send


def _missing(name: str) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        query, body = sealed_push(PUSH)
        return _post(hook, {k: v for k, v in query.items() if k != name}, body)

    return send


def _body(raw: bytes) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        query, _ = sealed_push(PUSH)
        return _post(hook, query, raw)

    return send


def _garbage_ciphertext(text: str) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        return _post(hook, *_signed_encrypt(text))

    return send


def _envelope(body: bytes) -> str:
    """AES-CBC of ``body`` (padded to 32 bytes) under acme's key: a hand-made envelope."""
    key = crypto.aes_key_from_encoding_key(AES_KEY)
    pad = 32 - len(body) % 32
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    raw = enc.update(body + bytes([pad]) * pad) + enc.finalize()
    return base64.b64encode(raw).decode()


def _crafted(body: bytes) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        return _post(hook, *_signed_encrypt(_envelope(body)))

    return send


LENGTH_OVERRUN = b"r" * 16 + struct.pack(">I", 4000) + b"{}" + APP_KEY.encode()
NOT_UTF8 = b"r" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + APP_KEY.encode()
TOO_SHORT = b"r" * 10


def _other_owner(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, owner_key="ding-someone-else")
    return _post(hook, query, body)


def _plaintext(text: str) -> Send:
    def send(hook: Hook) -> Awaitable[tuple[int, Any]]:
        return _post(hook, *sealed_push(text))

    return send


def _globex_push_to_acme(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH, token=GLOBEX_TOKEN, aes_key=GLOBEX_AES, owner_key="dingglobex")
    return _post(hook, query, body)


def _acme_push_to_globex(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH)
    return _post(hook, query, body, tenant="globex")


def _unknown_tenant(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, body = sealed_push(PUSH)
    return _post(hook, query, body, tenant="initech")


def _oversized(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, _ = sealed_push(PUSH)
    return _post(hook, query, b"{" + b" " * MAX_BODY + b"}")


def _oversized_chunked(hook: Hook) -> Awaitable[tuple[int, Any]]:
    query, _ = sealed_push(PUSH)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{"
        for _ in range(8):
            await asyncio.sleep(0.005)
            yield b" " * 512
        yield b"}"

    return _post(hook, query, chunks())


# (case id, send, status, tenant label of the metric, outcome)
CASES: list[tuple[str, Send, int, str, str]] = [
    ("forged-signature", _forged, 403, "acme", "rejected_badsignature"),
    ("non-ascii-signature", _signature("é" * 40), 403, "acme", "rejected_badsignature"),
    ("other-token", _other_token, 403, "acme", "rejected_badsignature"),
    ("signature-of-another-body", _tampered_body, 403, "acme", "rejected_badsignature"),
    ("globex-keys-to-acme", _globex_push_to_acme, 403, "acme", "rejected_badsignature"),
    ("acme-keys-to-globex", _acme_push_to_globex, 403, "globex", "rejected_badsignature"),
    ("unknown-tenant", _unknown_tenant, 404, "_unknown", "rejected_unknown_tenant"),
    ("expired-timestamp", _expired, 403, "acme", "rejected_staletimestamp"),
    ("future-timestamp", _future, 403, "acme", "rejected_staletimestamp"),
    ("timestamp-in-seconds", _seconds_not_ms, 403, "acme", "rejected_staletimestamp"),
    ("huge-timestamp", _timestamp("9" * 400), 403, "acme", "rejected_staletimestamp"),
    ("non-numeric-timestamp", _non_numeric, 403, "acme", "rejected_staletimestamp"),
    ("no-signature", _missing("signature"), 400, "acme", "rejected_malformed"),
    ("no-timestamp", _missing("timestamp"), 400, "acme", "rejected_malformed"),
    ("no-nonce", _missing("nonce"), 400, "acme", "rejected_malformed"),
    ("body-not-json", _body(b'{"encrypt": '), 400, "acme", "rejected_badpayload"),
    ("body-not-utf8", _body(b"\xff\xfe{}"), 400, "acme", "rejected_badpayload"),
    ("body-empty", _body(b""), 400, "acme", "rejected_badpayload"),
    ("body-json-list", _body(b'["encrypt"]'), 400, "acme", "rejected_badpayload"),
    (
        "encrypt-lone-surrogate",
        _body(b'{"encrypt": "\\ud800"}'),
        403,
        "acme",
        "rejected_badsignature",
    ),
    ("body-without-encrypt", _body(b'{"cipher": "x"}'), 400, "acme", "rejected_badpayload"),
    ("encrypt-not-string", _body(b'{"encrypt": 12}'), 400, "acme", "rejected_badpayload"),
    (
        "ciphertext-not-base64",
        _garbage_ciphertext("not base64 at all!"),
        400,
        "acme",
        "rejected_badenvelope",
    ),
    (
        "ciphertext-bad-length",
        _garbage_ciphertext("QUJDREVGRw=="),
        400,
        "acme",
        "rejected_badenvelope",
    ),
    (
        "ciphertext-bad-padding",
        _garbage_ciphertext("A" * 64),
        400,
        "acme",
        "rejected_badpadding",
    ),
    ("length-overrun", _crafted(LENGTH_OVERRUN), 400, "acme", "rejected_badlength"),
    ("plaintext-too-short", _crafted(TOO_SHORT), 400, "acme", "rejected_badlength"),
    ("message-not-utf8", _crafted(NOT_UTF8), 400, "acme", "rejected_badencoding"),
    ("other-owner-key", _other_owner, 400, "acme", "rejected_ownerkeymismatch"),
    ("plaintext-not-json", _plaintext("success"), 400, "acme", "rejected_badpayload"),
    (
        "plaintext-no-users",
        _plaintext('{"EventType":"calendar_event_change"}'),
        400,
        "acme",
        "rejected_badpayload",
    ),
    ("oversized", _oversized, 413, "acme", "rejected_too_large"),
    ("oversized-chunked", _oversized_chunked, 413, "acme", "rejected_too_large"),
]


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


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone (the session one is shared and must keep running)."""
    server = start_redis()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


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
