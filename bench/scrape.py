"""Benchmark 6 — what a Prometheus scrape and the status page cost with many bindings.

``syncd web`` runs as its own process (the real CLI) on a real redis-server holding the
state of ``bindings`` bindings (5 tenants; statuses as real runs write them, one in ten
failed, one in five with dead letters, one in seven with conflicts, one in three waiting).
A client in this process then GETs ``/metrics`` and ``/status`` ``repeat`` times each, one
at a time, after a warm-up. Baseline in the same run, same process: ``/healthz`` (the
HTTP round trip and nothing else). ``/metrics`` and ``/status`` read every binding from
Redis in one Lua script per request (``syncd.store.gauges``).

Measured: wall time per request (median, p95), response size, and the ratio to the
``/healthz`` baseline. Checked: every ``/metrics`` answer has a ``syncd_binding_failed``
sample per binding, and every ``/status`` page a row per binding.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import redis.asyncio as aredis

from bench._report import table
from bench._stats import summary
from bench.webhook import Webhook
from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.redis import RedisStore

DEFAULTS = {"bindings": 500, "scrapes": 50}
TENANTS = 5
WARM_UP = 5


def tenant_yaml(tenant: str, count: int) -> str:
    """A tenant file with ``count`` CalDAV bindings (nothing is reached: nothing runs)."""
    users = "".join(
        f"  - {{union_id: u-{i}, email: u{i}@{tenant}.example}}\n" for i in range(count)
    )
    bindings = "".join(
        f"  - id: b{i:04d}\n    dingtalk_user: u-{i}\n"
        f'    caldav: {{url: "http://127.0.0.1:9/{tenant}/{i}/"}}\n'
        for i in range(count)
    )
    return (
        f"id: {tenant}\ntimezone: Asia/Shanghai\ndingtalk:\n  api_base: http://127.0.0.1:9\n"
        f"  app_key: ding{tenant}\n  app_secret: s\n"
        "  callback: {token: tok, aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n"
        f"directory:\n{users}bindings:\n{bindings}"
    )


async def _seed(redis_url: str, refs: list[BindingRef]) -> None:
    """Statuses, dead letters, conflicts and dirty marks as real runs leave them."""
    client = aredis.Redis.from_url(redis_url)
    store = RedisStore(client)
    now = datetime.now(UTC)
    try:
        for i, ref in enumerate(refs):
            finished = (now - timedelta(seconds=i % 90)).isoformat()
            status: dict[str, Any] = {
                "state": "ok",
                "last_run": finished,
                "last_success": finished,
                "duration": 0.12,
                "counts": {"created": 0, "updated": 1, "deleted": 0, "conflicts": 0},
                "errors": [],
                "held_deletions": [],
                "warnings": [],
            }
            if i % 10 == 0:
                status |= {"state": "failed", "last_error": f"calendar not found: {ref}"}
            await store.set_status(ref, status)
            if i % 5 == 0:
                await store.add_dead_letter(ref, {"kind": "binding", "error": "X: y"})
            if i % 3 == 0:
                await client.set(keys.binding_key(ref, keys.DIRTY), f"{time.time():.3f}")
            if i % 7 == 0:
                await client.rpush(keys.binding_key(ref, keys.CONFLICTS), "{}")
    finally:
        await client.aclose()


async def _time(session: aiohttp.ClientSession, url: str, n: int) -> tuple[list[float], str]:
    for _ in range(WARM_UP):
        async with session.get(url) as resp:
            await resp.read()
    times, body = [], ""
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url) as resp:
            body = await resp.text()
            assert resp.status == 200, (url, resp.status)
        times.append(time.perf_counter() - started)
    return times, body


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Time /healthz, /metrics and /status of ``syncd web`` over ``bindings`` bindings."""
    total, n = int(opts.get("bindings", DEFAULTS["bindings"])), int(opts["scrapes"])
    per = total // TENANTS
    refs = [BindingRef(f"t{t}", f"b{i:04d}") for t in range(TENANTS) for i in range(per)]
    hook = Webhook(tenants={f"t{t}": tenant_yaml(f"t{t}", per) for t in range(TENANTS)})
    try:
        await _seed(hook.redis.url, refs)
        base = f"http://127.0.0.1:{hook.port}"
        async with aiohttp.ClientSession() as session:
            await hook.ready(session)
            results = {}
            for path in ("/healthz", "/metrics", "/status"):
                times, body = await _time(session, base + path, n)
                results[path] = {"times": summary(times), "bytes": len(body.encode())}
                if path == "/metrics":
                    assert body.count("syncd_binding_failed{") == len(refs)
                if path == "/status":
                    assert body.count("<tr class=") == len(refs)
    finally:
        hook.stop()
    return {"bindings": len(refs), "scrapes": n, "results": results}


def render(result: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    base = result["results"]["/healthz"]["times"]["median"]
    rows = []
    for path, r in result["results"].items():
        t = r["times"]
        ratio = f"{t['median'] / base:.1f}×" if base else "-"
        rows.append([path, _ms(t["median"]), _ms(t["p95"]), f"{r['bytes']:,}", ratio])
    head = f"{result['bindings']} bindings, {result['scrapes']} requests per path, one at a time."
    return head + "\n\n" + table(["path", "median", "p95", "bytes", "× /healthz"], rows)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
