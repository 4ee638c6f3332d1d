"""Benchmark — sustained DingTalk → CalDAV push at organisation scale.

``--load-bindings`` (50) sandbox users, each bound to its own Radicale calendar, one
tenant. The real ``syncd web`` and ``syncd worker`` run as child processes (the CLI, as in
production, JSON logs at warning level) on a real redis-server; the sandbox runs in this
process and pushes real signed, encrypted callbacks to the webhook.

* **Sustained**: ``rate`` (20) events a second are created through the sandbox API for
  ``duration`` (60) seconds, round-robin over the users, each at its own scheduled instant.
* **Burst**: then ``burst`` (200) creates within one second.
* **Raw burst** (the baseline, same run, same Radicale): the burst's items, fetched, are
  PUT again under new names straight to Radicale, ``burst`` of them scheduled over one
  second with at most :data:`RAW_CONCURRENCY` at once (one worker's ``max_jobs``): how
  fast Radicale itself takes that burst. Latency from each PUT's scheduled instant.

DingTalk requests per phase come from the sandbox's counters (``ListEvents`` per change
shows how many reconciles listed DingTalk).

The clock of one change runs from just before its CreateEvent call until Radicale has
answered the ``PUT`` of its item (the server's log line, tailed every 5 ms: the item is
visible from that moment; reading the log costs the server nothing, unlike polling GETs).
A change not seen within 30 s of the end counts as lost; at the end every item is also
fetched with a GET. The arq queue's depth (``ZCARD arq:queue``) is sampled every 0.5 s.

The tenant's ``dingtalk.qps`` (the pace of DingTalk calls all workers share, default 15)
is ``qps`` when given: every reconcile makes at least one DingTalk call (ListEvents), so
the pace bounds the reconciles per second of the whole fleet.
The bindings keep the default ``poll_interval`` (30 s): their polls run in the middle of
the pushes, which is the point (a push must not wait behind idle polls).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import structlog
from arq.connections import ArqRedis, create_pool
from arq.constants import default_queue_name

from bench._report import table
from bench._rig import dingtalk_body, first_slot
from bench._stats import ms, percentile, summary
from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config._models import DEFAULT_DINGTALK_QPS
from syncd.translate import uid_for_dingtalk_id
from syncd_lab.sandbox.seed import seed_from_data
from syncd_lab.stack import config as lab_config
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalDAVServer, make_calendar, start_caldav_server
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import (
    AES_KEY,
    APP_KEY,
    APP_SECRET,
    CALLBACK_TOKEN,
    CORP_ID,
    SandboxApi,
    SandboxHandle,
    sandbox_token,
    start_sandbox,
)

log = structlog.get_logger(__name__)

DEFAULTS: dict[str, Any] = {
    "bindings": 50,
    "rate": 20.0,
    "duration": 60.0,
    "burst": 200,
    "qps": 0.0,  # the tenant's dingtalk.qps; 0: syncd's default
    "workers": 1,  # syncd worker processes
}
RAW_CONCURRENCY = 10  # the raw burst's concurrent PUTs: one worker's max_jobs
SAMPLE_EVERY_S = 0.5
TAIL_EVERY_S = 0.005
LOST_AFTER_S = 30.0
WARM_UP_S = 5.0
_PUT = re.compile(r"\] PUT response status for '(?P<path>[^']*)'[^\n]*?: (?P<status>\d{3}) ")


def users(n: int) -> list[str]:
    """The benchmark's DingTalk users ``u-load00`` ..."""
    return [f"u-load{i:02d}" for i in range(n)]


def _seed(names: list[str]) -> Any:
    app = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "corp_id": CORP_ID,
        "callback": {"url": None, "token": CALLBACK_TOKEN, "aes_key": AES_KEY},
    }
    people = [{"union_id": u, "name": u, "email": f"{u[2:]}@acme.example"} for u in names]
    return seed_from_data({"apps": [app], "users": people})


@dataclass
class PutTail:
    """Reads Radicale's log as it grows: when each item's PUT was answered 2xx."""

    path: Path
    seen: dict[str, float] = field(default_factory=dict)
    offset: int = 0
    rest: str = ""

    def poll(self) -> None:
        """Read what was appended since the last call."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        if not data:
            return
        self.offset += len(data)
        text = self.rest + data.decode(errors="replace")
        text, _, self.rest = text.rpartition("\n")
        now = time.perf_counter()
        for m in _PUT.finditer(text):
            if m["status"].startswith("2"):
                self.seen.setdefault(unquote(m["path"]), now)

    async def follow(self, stop: asyncio.Event) -> None:
        """Poll every :data:`TAIL_EVERY_S` until ``stop`` is set."""
        while not stop.is_set():
            self.poll()
            await asyncio.sleep(TAIL_EVERY_S)


@dataclass
class Load:
    """The running system and what the load generator recorded."""

    dav: CalDAVServer
    sandbox: SandboxHandle
    api: SandboxApi
    pool: ArqRedis
    paths: dict[str, str]  # user -> calendar path
    tail: PutTail
    sent: list[tuple[str, float, str]] = field(default_factory=list)  # (item path, t0, phase)
    depth: list[tuple[float, int]] = field(default_factory=list)
    started: float = 0.0


def _child(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1]
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


async def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


@asynccontextmanager
async def running(n: int, qps: float = 0.0, workers: int = 1) -> AsyncIterator[Load]:
    """Redis, Radicale with ``n`` calendars, the sandbox, ``syncd web`` and ``syncd worker``."""
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-load-"))
    redis = start_redis()
    dav = start_caldav_server("radicale", authenticate=False)
    procs: list[subprocess.Popen[bytes]] = []
    names = users(n)
    try:
        async with start_sandbox(_seed(names)) as sandbox, aiohttp.ClientSession() as session:
            cals = {u: make_calendar(dav) for u in names}
            app = lab_config.dingtalk(
                sandbox.url, APP_KEY, APP_SECRET, token=CALLBACK_TOKEN, aes_key=AES_KEY
            )
            if qps:
                app["qps"] = qps
            binds = [lab_config.binding(f"b-{u[2:]}", u, cals[u].url) for u in names]
            people = [(u, f"{u[2:]}@acme.example") for u in names]
            acme = lab_config.tenant("acme", app, binds, directory=people)
            settings = {"redis_url": redis.url, "log": {"format": "json", "level": "warning"}}
            lab_config.write_config_dir(root / "config", settings, [acme])
            port = free_port()
            exe = str(Path(sys.executable).parent / "syncd")
            cfg = ["--config", str(root / "config")]
            procs.append(
                _child([exe, "web", *cfg, "--listen", f"127.0.0.1:{port}"], root / "web.log")
            )
            for w in range(workers):
                procs.append(_child([exe, "worker", *cfg], root / f"worker{w}.log"))
            await _ready(f"http://127.0.0.1:{port}/readyz")
            sandbox.sandbox.set_callback(APP_KEY, f"http://127.0.0.1:{port}/callbacks/acme")
            pool = await create_pool(queue.redis_settings(redis.url))
            api = SandboxApi(sandbox, session, await sandbox_token(sandbox))
            tail = PutTail(dav.log_path)
            tail.poll()
            paths = {u: c.path for u, c in cals.items()}
            try:
                yield Load(dav, sandbox, api, pool, paths, tail)
            finally:
                sandbox.sandbox.set_callback(APP_KEY, None)
                await pool.aclose()
    finally:
        for p in procs:
            _stop(p)
        redis.stop()
        dav.stop()
        shutil.rmtree(dav.workdir, ignore_errors=True)
        shutil.rmtree(redis.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


async def _sample_depth(load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        depth = int(await load.pool.zcard(default_queue_name))
        load.depth.append((round(time.perf_counter() - load.started, 2), depth))
        await asyncio.sleep(SAMPLE_EVERY_S)


async def _create(load: Load, hrefs: CalDAVClient, user: str, i: int, phase: str) -> None:
    t0 = time.perf_counter()
    ev = await load.api.create(user, dingtalk_body(i % 500, first_slot(), f"Load {phase} {i}"))
    href = hrefs.href_for_uid(uid_for_dingtalk_id(ev["id"]))  # "/NAME.ics" under the root
    path = unquote(load.paths[user] + href.lstrip("/"))
    load.sent.append((path, t0, phase))


async def _schedule(load: Load, hrefs: CalDAVClient, count: int, rate: float, phase: str) -> None:
    """``count`` creates, the k-th at ``k / rate`` s from now, round-robin over the users."""
    names = list(load.paths)
    base = time.perf_counter()
    tasks = []
    for k in range(count):
        delay = base + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user = names[k % len(names)]
        tasks.append(asyncio.create_task(_create(load, hrefs, user, k, phase)))
    await asyncio.gather(*tasks)


async def _settle(load: Load) -> None:
    """Until every sent change is seen, or :data:`LOST_AFTER_S` passed."""
    deadline = time.perf_counter() + LOST_AFTER_S
    while time.perf_counter() < deadline:
        if all(path in load.tail.seen for path, _, _ in load.sent):
            return
        await asyncio.sleep(0.1)


async def _present(load: Load) -> int:
    """How many sent items a GET finds on Radicale."""
    found = 0
    async with aiohttp.ClientSession() as s:
        for path, _, _ in load.sent:
            async with s.get(load.dav.base_url + path) as resp:
                found += resp.status == 200
    return found


def _latencies(load: Load, phase: str) -> dict[str, Any]:
    lat = [load.tail.seen[p] - t0 for p, t0, ph in load.sent if ph == phase and p in load.tail.seen]
    sent = sum(1 for _, _, ph in load.sent if ph == phase)
    return {**summary(lat), "p50": percentile(lat, 50), "sent": sent, "lost": sent - len(lat)}


async def _raw_burst(load: Load, count: int) -> dict[str, Any]:
    """The baseline: ``count`` of the burst's items PUT again straight to Radicale under new
    names, scheduled over one second, :data:`RAW_CONCURRENCY` at once."""
    burst = [p for p, _, ph in load.sent if ph == "burst"][:count]
    gate = asyncio.Semaphore(RAW_CONCURRENCY)
    lat: list[float] = []
    failed: list[str] = []
    async with aiohttp.ClientSession() as s:
        texts = []
        for path in burst:
            async with s.get(load.dav.base_url + path) as resp:
                if resp.status == 200:  # a change syncd lost is not in Radicale
                    texts.append((path, await resp.text()))

        async def put(k: int, text: str, path: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            async with gate:
                uid = f"raw-{k}"
                body = re.sub(r"(?m)^UID:[^\r\n]*", f"UID:{uid}", text.replace("\r\n ", ""))
                url = load.dav.base_url + path.rsplit("/", 1)[0] + f"/{uid}.ics"
                headers = {"Content-Type": "text/calendar; charset=utf-8"}
                async with s.put(url, data=body.encode(), headers=headers) as resp:
                    if resp.status >= 300:
                        failed.append(f"{resp.status} {(await resp.text())[:200]}")
                        return
            lat.append(time.perf_counter() - at)

        base = time.perf_counter()
        await asyncio.gather(
            *(put(k, t, p, base + k / len(texts)) for k, (p, t) in enumerate(texts))
        )
    if failed:
        log.warning("raw_put_failed", count=len(failed), first=failed[0])
    return {**summary(lat), "p50": percentile(lat, 50), "sent": len(texts), "lost": len(failed)}


def _listings(load: Load) -> dict[str, int]:
    return dict(load.sandbox.sandbox.stats()["requests"])


def _depth_summary(series: list[tuple[float, int]]) -> dict[str, Any]:
    values = [d for _, d in series]
    return {"max": max(values, default=0), "p95": percentile(values, 95), "samples": len(values)}


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then the sustained phase and the burst; latencies, losses and queue depth."""
    n = opts.get("load_bindings", DEFAULTS["bindings"])
    rate, duration, burst = opts["rate"], opts["duration"], opts["burst"]
    async with running(n, opts.get("qps", 0.0), opts.get("workers", 1)) as load:
        hrefs = CalDAVClient("http://127.0.0.1:9/", None, None)
        stop = asyncio.Event()
        follower = asyncio.create_task(load.tail.follow(stop))
        try:
            await _schedule(load, hrefs, n, n / WARM_UP_S, "warm-up")
            await _settle(load)
            load.started = time.perf_counter()
            sampler = asyncio.create_task(_sample_depth(load, stop))
            requests = [_listings(load)]
            await _schedule(load, hrefs, int(rate * duration), rate, "sustained")
            sustained_end = round(time.perf_counter() - load.started, 2)
            await asyncio.sleep(2.0)
            requests.append(_listings(load))
            burst_start = round(time.perf_counter() - load.started, 2)
            await _schedule(load, hrefs, burst, float(burst), "burst")
            await _settle(load)
            requests.append(_listings(load))
            stop.set()
            await sampler
            raw = await _raw_burst(load, burst)
        finally:
            stop.set()
            await follower
            await hrefs.close()
        present = await _present(load)
    series = load.depth
    in_sustained = [(t, d) for t, d in series if t <= sustained_end]
    in_burst = [(t, d) for t, d in series if t >= burst_start]
    calls = [
        {
            op: after.get(op, 0) - before.get(op, 0)
            for op in after
            if after.get(op, 0) > before.get(op, 0)
        }
        for before, after in itertools.pairwise(requests)
    ]
    return {
        "workers": opts.get("workers", 1),
        "dingtalk_requests": {"sustained": calls[0], "burst": calls[1]},
        "raw_burst": raw,
        "bindings": n,
        "rate_per_s": rate,
        "duration_s": duration,
        "burst": burst,
        "dingtalk_qps": opts.get("qps") or DEFAULT_DINGTALK_QPS,
        "sustained": {**_latencies(load, "sustained"), "queue": _depth_summary(in_sustained)},
        "burst_result": {**_latencies(load, "burst"), "queue": _depth_summary(in_burst)},
        "present_on_radicale": present,
        "sent": len(load.sent),
        "queue_depth_series": series,
    }


def render(result: dict[str, Any]) -> str:
    """Markdown table: one row per phase."""
    rows = []
    for name, key in (("sustained", "sustained"), ("burst", "burst_result"), ("raw", "raw_burst")):
        if key not in result:
            continue
        r = result[key]
        what = (
            f"{result['rate_per_s']:g}/s for {result['duration_s']:g} s"
            if name == "sustained"
            else f"{result['burst']} in 1 s"
        )
        calls = result.get("dingtalk_requests", {}).get(name, {})
        listed = f", ListEvents {calls.get('ListEvents', 0)}" if name != "raw" else ""
        who = (
            f"Radicale alone, {RAW_CONCURRENCY} at once"
            if name == "raw"
            else f"{result.get('workers', 1)} worker(s), dingtalk.qps "
            f"{result.get('dingtalk_qps', DEFAULT_DINGTALK_QPS):g}{listed}"
        )
        rows.append(
            [
                f"{name}: {what} over {result['bindings']} bindings, {who}",
                r["sent"],
                r["lost"],
                ms(r["p50"]),
                ms(r["p99"]),
                ms(r["max"]),
                r["queue"]["p95"] if "queue" in r else "-",
                r["queue"]["max"] if "queue" in r else "-",
            ]
        )
    out = table(
        ["phase", "changes", "lost", "p50", "p99", "max", "queue depth p95", "queue depth max"],
        rows,
    )
    return out + (
        f"\n\nEvery item found by a GET afterwards: {result['present_on_radicale']} of "
        f"{result['sent']} (warm-up included). Queue depth series (every {SAMPLE_EVERY_S} s): "
        "`bench/results/sustained*.json`."
    )
