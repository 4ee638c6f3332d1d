"""Benchmark 4 — webhook throughput and ack latency under a burst of DingTalk pushes.

``syncd web`` runs as its own process (the real CLI, JSON logs at info level, as in
production) with a real redis-server. A load client in this process sends ``callbacks``
signed and AES-encrypted ``calendar_event_change`` pushes for u-alice (each with its own
BizId, so none is a duplicate) over loopback, with ``concurrency`` senders at a time, after
a 50-push warm-up. Every push does the full work: verify, decrypt, dedupe, mark dirty +
enqueue (coalesced: no worker runs), encrypted ``success`` reply.

With ``push_rate`` (default 500) a third level sends the pushes open loop at that rate
(push k at k / rate s, however slow the replies): the ack latency at a given load.

Measured: pushes/second, per-push ack latency (request sent → reply read) p50/p99/max
against DingTalk's 1,500 ms limit, CPU seconds the webhook process used per push, Redis
commands per push (server's INFO counter). Baselines in the same run, each in its own
process (``bench._bare_receiver``): a bare aiohttp receiver doing only the crypto, and a
bare aiohttp 200 handler (reads the body, answers ``{}``: issue 13's target 5). Checked
afterwards: every reply decrypts to ``success`` and every push's dedupe key is in Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis

from bench._report import table
from bench._stats import ms, percentile, summary
from syncd import crypto
from syncd.store import keys
from syncd_lab.stack.ports import free_port
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import AES_KEY, APP_KEY, APP_SECRET, CALLBACK_TOKEN, CORP_ID

DEFAULTS = {"callbacks": 2000, "concurrency": [1, 16], "push_rate": 500.0}
DINGTALK_LIMIT_S = 1.5
WARM_UP = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")

TENANT_YAML = f"""\
id: acme
timezone: Asia/Shanghai
dingtalk:
  api_base: http://127.0.0.1:9
  app_key: {APP_KEY}
  app_secret: {APP_SECRET}
  callback: {{token: {CALLBACK_TOKEN}, aes_key: {AES_KEY}}}
directory:
  - {{union_id: u-alice, email: alice@acme.example}}
bindings:
  - id: alice-work
    dingtalk_user: u-alice
    caldav: {{url: "http://127.0.0.1:9/syncd/cal/"}}
"""

Push = tuple[dict[str, str], bytes, str]  # query, body, push id


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def push(i: int) -> Push:
    """One sealed push as DingTalk sends it: query ``signature/timestamp/nonce``, body."""
    biz = uuid.uuid4().hex
    text = json.dumps(
        {
            "EventType": "calendar_event_change",
            "EventTime": int(time.time() * 1000),
            "CorpId": CORP_ID,
            "BizId": biz,
            "CalendarEventId": f"bench{i:08d}",
            "CalendarEventUpdateTime": int(time.time() * 1000),
            "CalendarId": "c" * 32,
            "UnionIdList": ["u-alice"],
            "ChangeType": "updated",
            "operator": {"type": "user"},
        }
    )
    sealed = crypto.seal(text, CALLBACK_TOKEN, AES_KEY, APP_KEY)
    query = {k: sealed[k] for k in ("signature", "timestamp", "nonce")}
    return query, json.dumps({"encrypt": sealed["encrypt"]}).encode(), biz


class Webhook:
    """``syncd web`` (or, with ``bare``, the crypto-only baseline) in a child process."""

    def __init__(
        self,
        *,
        bare: bool = False,
        tenants: dict[str, str] | None = None,
        checkout: str | None = None,
    ) -> None:
        """``checkout``: run ``syncd web`` from that source tree (another commit) instead."""
        self.root = Path(tempfile.mkdtemp(prefix="syncd-bench-web-"))
        self.redis = start_redis()
        (self.root / "tenants").mkdir()
        (self.root / "syncd.yaml").write_text(
            f"redis_url: {self.redis.url}\nlog: {{format: json, level: info}}\n"
        )
        for name, text in (tenants or {"acme": TENANT_YAML}).items():
            (self.root / "tenants" / f"{name}.yaml").write_text(text)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/callbacks/acme"
        exe = Path(sys.executable).parent / "syncd"
        self.log = (self.root / "web.log").open("wb")
        cmd = [str(exe), "web", "--config", str(self.root), "--listen", f"127.0.0.1:{self.port}"]
        if bare:
            cmd = [sys.executable, "-m", "bench._bare_receiver", str(self.port)]
        env = None
        if checkout:  # its syncd and lab first on the path: that tree's code serves
            env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout}/lab"}
        self.process = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=checkout or Path(__file__).resolve().parents[1],
            env=env,
        )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Wait until ``/readyz`` answers 200."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"syncd web did not start: {(self.root / 'web.log').read_text()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and Redis; remove the files."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()
        self.redis.stop()
        shutil.rmtree(self.redis.workdir, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


async def _send(
    session: aiohttp.ClientSession, url: str, pushes: list[Push], concurrency: int
) -> tuple[list[float], list[dict[str, Any]], float]:
    """Send every push with ``concurrency`` senders: latencies, replies, total wall time."""
    todo = iter(pushes)
    latencies: list[float] = []
    replies: list[dict[str, Any]] = []

    async def sender() -> None:
        for query, body, _ in todo:
            t0 = time.perf_counter()
            async with session.post(url, params=query, data=body) as resp:
                reply = await resp.json(content_type=None)
                status = resp.status
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"push answered {status}: {reply}")
            replies.append(reply)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies, replies, time.perf_counter() - started


def _check_replies(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        text = crypto.open_callback(
            CALLBACK_TOKEN,
            AES_KEY,
            APP_KEY,
            signature=reply["msg_signature"],
            timestamp=reply["timeStamp"],
            nonce=reply["nonce"],
            encrypt=reply["encrypt"],
        )
        if text != "success":
            raise RuntimeError(f"webhook replied {text!r}, not success")


async def _stored(redis_url: str, pushes: list[Push]) -> int:
    client = aredis.Redis.from_url(redis_url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for _, _, biz in pushes:
                pipe.exists(keys.push_key("acme", biz))
            return sum(await pipe.execute())
    finally:
        await client.aclose()


async def _paced(
    session: aiohttp.ClientSession, url: str, pushes: list[Push], rate: float
) -> tuple[list[float], list[dict[str, Any]], float]:
    """Send push k at ``k / rate`` s (open loop: a slow reply does not slow the sender)."""
    latencies: list[float] = []
    replies: list[dict[str, Any]] = []

    async def one(query: dict[str, str], body: bytes) -> None:
        t0 = time.perf_counter()
        async with session.post(url, params=query, data=body) as resp:
            reply = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"push answered {resp.status}: {reply}")
        latencies.append(time.perf_counter() - t0)
        replies.append(reply)

    started = time.perf_counter()
    tasks = []
    for k, (query, body, _) in enumerate(pushes):
        delay = started + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(query, body)))
    await asyncio.gather(*tasks)
    return latencies, replies, time.perf_counter() - started


async def _level(
    web: Webhook,
    session: aiohttp.ClientSession,
    n: int,
    c: int,
    *,
    bare: bool = False,
    rate: float = 0.0,
    plain: bool = False,
) -> dict[str, Any]:
    pushes = [push(i) for i in range(n)]
    commands0, reads0 = await _redis_counters(web.redis.url)
    cpu0 = _cpu_seconds(web.process.pid)
    if rate:
        latencies, replies, wall = await _paced(session, web.url, pushes, rate)
    else:
        latencies, replies, wall = await _send(session, web.url, pushes, c)
    cpu = _cpu_seconds(web.process.pid) - cpu0
    commands1, reads1 = await _redis_counters(web.redis.url)
    commands, reads = commands1 - commands0 - 1, reads1 - reads0 - 1  # less our INFO
    if not plain:
        _check_replies(replies)
    stored = n if bare else await _stored(web.redis.url, pushes)
    if stored != n:
        raise RuntimeError(f"only {stored} of {n} pushes left a dedupe key in Redis")
    return {
        "concurrency": f"{rate:g}/s" if rate else c,
        "callbacks": n,
        "per_second": n / wall,
        "wall_s": wall,
        "latency": {
            **summary(latencies),
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
        },
        "over_limit": sum(1 for x in latencies if x > DINGTALK_LIMIT_S),
        "webhook_cpu_ms_per_push": cpu * 1000 / n,
        "redis_commands_per_push": 0.0 if bare else commands / n,
        # Reads Redis did on its sockets per push: 1 if each push's script arrives alone,
        # less when concurrent pushes share one pipeline (syncd.store.batch).
        "redis_reads_per_push": 0.0 if bare else reads / n,
    }


async def _redis_counters(url: str) -> tuple[int, int]:
    """Commands the Redis server has processed so far, and socket reads (INFO stats)."""
    client = aredis.Redis.from_url(url)
    try:
        stats = await client.info("stats")
    finally:
        await client.aclose()
    return int(stats["total_commands_processed"]), int(stats["total_reads_processed"])


async def _serve_and_load(
    opts: dict[str, Any], *, bare: bool, plain: bool = False
) -> list[dict[str, Any]]:
    web = Webhook(bare=bare)
    if plain:
        web.url = web.url.replace("/acme", "/plain")
    try:
        connector = aiohttp.TCPConnector(
            limit=0 if opts.get("push_rate") else max(opts["concurrency"])
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            await web.ready(session)
            await _send(session, web.url, [push(i) for i in range(WARM_UP)], 4)
            levels = [
                await _level(web, session, opts["callbacks"], c, bare=bare, plain=plain)
                for c in opts["concurrency"]
            ]
            if opts.get("push_rate"):
                rate = opts["push_rate"]
                levels.append(
                    await _level(
                        web, session, opts["callbacks"], 0, bare=bare, rate=rate, plain=plain
                    )
                )
            return levels
    finally:
        web.stop()


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 4 for each concurrency level: syncd's webhook, then the bare receivers."""
    levels = await _serve_and_load(opts, bare=False)
    bare = await _serve_and_load(opts, bare=True)
    plain = await _serve_and_load(opts, bare=True, plain=True)
    return {"levels": levels, "bare": bare, "plain": plain, "limit_s": DINGTALK_LIMIT_S}


def render(result: dict[str, Any]) -> str:
    """Markdown table: one row per concurrency level and server."""
    rows = []
    bare = {lv["concurrency"]: lv for lv in result.get("bare", [])}
    plain = {lv["concurrency"]: lv for lv in result.get("plain", [])}
    runs = [("syncd web", lv) for lv in result["levels"]]
    runs += [("bare crypto-only receiver", lv) for lv in result.get("bare", [])]
    runs += [("bare 200 handler", lv) for lv in result.get("plain", [])]
    for who, lv in runs:
        lat = lv["latency"]
        rows.append(
            [
                who,
                lv["concurrency"],
                lv["callbacks"],
                f"{lv['per_second']:.0f}",
                _ratio(lv, bare.get(lv["concurrency"])),
                _ratio(lv, plain.get(lv["concurrency"])),
                ms(lat["p50"]),
                ms(lat["p99"]),
                ms(lat["max"]),
                f"{lv['over_limit']} of {lv['callbacks']}",
                f"{lv['webhook_cpu_ms_per_push']:.2f} ms",
                f"{lv.get('redis_commands_per_push', 0):.1f}" if who == "syncd web" else "—",
            ]
        )
    header = [
        "server",
        "concurrent senders (or paced rate)",
        "pushes",
        "pushes/s",
        "throughput vs crypto-only",
        "throughput vs bare 200",
        "ack p50",
        "ack p99",
        "ack max",
        "over 1,500 ms",
        "webhook CPU per push",
        "Redis commands per push",
    ]
    return table(header, rows)


def _ratio(level: dict[str, Any], base: dict[str, Any] | None) -> str:
    return f"{level['per_second'] / base['per_second']:.2f}" if base else "—"
