"""Benchmark 4d — client CPU of the webhook's one Redis round trip (an EVALSHA).

``python -m bench redis-rtt``: a real redis-server; the same small script (one SET, reply
``[1]``) called ``--round-pushes`` times in a row per client, ``--webhook-rounds`` rounds
with the clients interleaved; the client process's CPU per call (``time.process_time``), median
over rounds. Clients: redis-py through its connection pool (as syncd calls it) with the
hiredis parser and with its pure-Python parser, redis-py with ``single_connection_client``,
a redis-py connection used directly (send + read, no pool), and a raw asyncio stream
writing the same RESP and reading the two reply lines (the floor). Then syncd's group commit
(:class:`syncd.store.batch.ScriptBatch`) with one caller, and 16 callers at once (as 16
concurrent pushes) each through redis-py's pool and through the group commit (one pipeline
per event-loop iteration).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio import Redis

from bench._report import table
from bench._stats import median
from syncd.store.batch import ScriptBatch
from tests.fixtures.redis_server import start_redis

SCRIPT = "redis.call('SET', KEYS[1], '1'); return {1}"
Client = Callable[[str, str, int], Awaitable[float]]


def _resp(*parts: str | int) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _timed(n: int, call: Callable[[int], Awaitable[Any]]) -> float:
    cpu0 = time.process_time()
    for i in range(n):
        await call(i)
    return (time.process_time() - cpu0) / n


def _pooled(**kwargs: Any) -> Client:
    async def client(url: str, sha: str, n: int) -> float:
        redis = Redis.from_url(url, socket_timeout=2.0, **kwargs)
        try:
            await redis.ping()
            return await _timed(n, lambda i: redis.evalsha(sha, 1, f"k{i % 50}"))  # type: ignore[no-untyped-call]
        finally:
            await redis.aclose()

    return client


async def _direct(url: str, sha: str, n: int) -> float:
    redis = Redis.from_url(url, socket_timeout=2.0)
    conn = await redis.connection_pool.get_connection()

    async def call(i: int) -> Any:
        await conn.send_packed_command(conn.pack_command("EVALSHA", sha, 1, f"k{i % 50}"))
        return await conn.read_response()

    try:
        return await _timed(n, call)
    finally:
        await redis.connection_pool.release(conn)
        await redis.aclose()


async def _raw(url: str, sha: str, n: int) -> float:
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def call(i: int) -> None:
        writer.write(_resp("EVALSHA", sha, 1, f"k{i % 50}"))
        await reader.readuntil(b"\r\n")  # *1
        await reader.readuntil(b"\r\n")  # :1

    try:
        return await _timed(n, call)
    finally:
        writer.close()


def _concurrent(callers: int, *, batched: bool) -> Client:
    """``callers`` tasks sharing the ``n`` calls; CPU of the whole process per call."""

    async def client(url: str, sha: str, n: int) -> float:
        redis = Redis.from_url(url, socket_timeout=2.0)
        batch = ScriptBatch(SCRIPT)

        async def call(i: int) -> Any:
            if batched:
                return await batch.call(redis, [f"k{i % 50}"], [])
            return await redis.evalsha(sha, 1, f"k{i % 50}")  # type: ignore[no-untyped-call]

        async def caller(first: int) -> None:
            for i in range(first, n, callers):
                await call(i)

        try:
            await redis.ping()
            cpu0 = time.process_time()
            await asyncio.gather(*(caller(c) for c in range(callers)))
            return (time.process_time() - cpu0) / n
        finally:
            await redis.aclose()

    return client


CLIENTS: dict[str, Client] = {
    "redis-py pool, hiredis parser (syncd today)": _pooled(parser_class=_AsyncHiredisParser),
    "redis-py pool, pure-Python parser": _pooled(parser_class=_AsyncRESP2Parser),
    "redis-py single_connection_client": _pooled(single_connection_client=True),
    "redis-py connection, send + read (no pool)": _direct,
    "raw asyncio stream (floor)": _raw,
    "1 caller, syncd ScriptBatch (a lone call: plain EVALSHA behind a task)": _concurrent(
        1, batched=True
    ),
    "16 concurrent callers, redis-py pool (syncd before group commit)": _concurrent(
        16, batched=False
    ),
    "16 concurrent callers, syncd ScriptBatch (one pipeline per loop iteration)": _concurrent(
        16, batched=True
    ),
}


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds per EVALSHA for every client, per round."""
    server = start_redis()
    try:
        admin = Redis.from_url(server.url)
        sha = await admin.script_load(SCRIPT)  # type: ignore[no-untyped-call]
        await admin.aclose()
        out: dict[str, list[float]] = {name: [] for name in CLIENTS}
        for _ in range(opts["webhook_rounds"]):
            for name, client in CLIENTS.items():
                out[name].append(await client(server.url, sha, opts["round_pushes"]))
    finally:
        server.stop()
    return {"rounds": opts["webhook_rounds"], "calls": opts["round_pushes"], "cpu_s": out}


def render(result: dict[str, Any]) -> str:
    """Markdown table: client CPU per round trip, median over rounds, and vs the floor."""
    floor = median(result["cpu_s"]["raw asyncio stream (floor)"])
    rows = [
        [name, f"{median(v) * 1e6:.0f} µs", f"{median(v) / floor:.1f}×"]
        for name, v in result["cpu_s"].items()
    ]
    header = [
        f"client ({result['rounds']} rounds × {result['calls']} EVALSHA)",
        "CPU per call",
        "vs raw",
    ]
    return table(header, rows)
