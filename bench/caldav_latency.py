"""Benchmark — CalDAV → DingTalk latency without a push channel, and the poll rate it costs.

``--load-bindings`` (20) sandbox users, each bound to its own Radicale calendar at the
default settings (``poll_interval`` 30 s, ``poll_cadence`` defaults), one tenant. The real
``syncd worker`` runs as a child process (the CLI, JSON logs at warning level) on a real
redis-server; the sandbox runs in this process. Each *variant* gets a fresh stack:

* ``before``: the worker of ``--before-ref`` (default: the commit before the poll
  schedule: one SET per binding per 5 s tick, fixed ``poll_interval``), run from a
  ``git archive`` of that commit on ``PYTHONPATH``, same venv, same servers;
* ``after``: this checkout's worker;
* ``xandikos-poll`` / ``xandikos-push``: this checkout's worker against Xandikos started
  with ``--webdav-push`` (:func:`tests.fixtures.caldav_servers.start_xandikos_push`), without
  and with ``webdav_push`` configured. With it, syncd's web app (:func:`create_app`, what
  ``syncd serve`` runs) serves the push resources over https (a private CA that Xandikos
  trusts) in this process, and the worker registers a subscription per binding.

Per variant: each calendar is seeded with one event, the worker copies them to DingTalk;
then the change marks are dropped (as if every binding had been idle for an hour: the
benchmark cannot wait an hour) and the worker is left alone for ``--idle`` (120) s while
Radicale's log counts the requests per calendar (REPORT, PROPFIND, all). Then each binding,
from a random instant in the first ``--spread`` (60) s, gets a *first edit* (a CalDAV client
PUTs a new summary) and, each 5–20 s after the previous one arrived, ``--followups`` (3)
more; every edit is clocked from just before its PUT until the sandbox holds the new
summary (checked every 20 ms, in-process).

The day model (:func:`day_polls`) is computed, not measured: the polls a binding makes in
24 h for a few editing patterns, from the same :class:`~syncd.config.PollCadence` the
worker uses, against today's fixed ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from arq.connections import create_pool
from redis.asyncio import Redis

from bench._report import table
from bench._rig import first_slot, vcalendar, vevent
from bench._stats import ms, percentile, summary
from bench.sustained import _seed, _stop, users
from syncd import queue
from syncd.config import PollCadence, load_config
from syncd.model import BindingRef
from syncd.store import keys
from syncd.webhook.app import create_app
from syncd_lab.stack import config as lab_config
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import (
    CalDAVServer,
    make_calendar,
    start_caldav_server,
    start_xandikos_push,
)
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import (
    AES_KEY,
    APP_KEY,
    APP_SECRET,
    CALLBACK_TOKEN,
    SandboxHandle,
    start_sandbox,
)
from tests.fixtures.tls import LoopbackTls, make_loopback_tls

DEFAULTS: dict[str, Any] = {
    "bindings": 20,
    "idle": 120.0,
    "spread": 60.0,
    "followups": 3,
    "before_ref": "80c9c26",
    "variants": "before,after",
}
TIMEOUT_S = 180.0
CHECK_EVERY_S = 0.02
POLL_INTERVAL_S = 30.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    """One variant's running system."""

    dav: CalDAVServer
    sandbox: SandboxHandle
    redis: Redis
    urls: dict[str, str]  # user -> calendar URL
    paths: dict[str, str]  # user -> calendar path
    edits: list[tuple[str, float]] = field(default_factory=list)  # (kind, seconds)


def _source_of(ref: str, into: Path) -> Path:
    """A copy of ``syncd/`` as of ``ref`` (for the ``before`` worker), under ``into``."""
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "syncd"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def _env(source: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def syncd_of(source: Path | None) -> str:
    """Where the worker's ``syncd`` package is imported from (``-P``: not from the cwd)."""
    code = "import syncd; print(syncd.__file__)"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], env=_env(source), capture_output=True, check=True
    )
    return out.stdout.decode().strip()


def _worker(config_dir: Path, log: Path, source: Path | None) -> subprocess.Popen[bytes]:
    code = "import sys; from syncd.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-P", "-c", code, "worker", "--config", str(config_dir)]
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=_env(source)
        )


SERVERS = {  # variant -> (CalDAV server, WebDAV-Push configured)
    "before": ("radicale", False),
    "after": ("radicale", False),
    "xandikos-poll": ("xandikos", False),
    "xandikos-push": ("xandikos", True),
}


@asynccontextmanager
async def _push_web(config_dir: Path, tls: LoopbackTls, port: int) -> AsyncIterator[None]:
    """syncd's web app on https://127.0.0.1:``port`` (the push resources)."""
    config = load_config(config_dir, {})
    pool = await create_pool(queue.redis_settings(config.settings.redis_url))
    runner = web.AppRunner(create_app(config, pool))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context()).start()
    try:
        yield
    finally:
        await runner.cleanup()
        await pool.aclose()


@asynccontextmanager
async def running(n: int, source: Path | None, variant: str = "after") -> AsyncIterator[Stack]:
    """Redis, Radicale or Xandikos with ``n`` calendars, the sandbox and a ``syncd worker``
    (and, for ``xandikos-push``, syncd's web app for the push resources)."""
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-cdl-"))
    redis = start_redis()
    server, push = SERVERS[variant]
    port = free_port()
    (root / "tls").mkdir()
    tls = make_loopback_tls(root / "tls")
    if server == "xandikos":
        dav = start_xandikos_push(tls.ca)
    else:
        dav = start_caldav_server("radicale", authenticate=False)
    worker = None
    names = users(n)
    try:
        async with start_sandbox(_seed(names)) as sandbox:
            cals = {u: make_calendar(dav) for u in names}
            app = lab_config.dingtalk(
                sandbox.url, APP_KEY, APP_SECRET, token=CALLBACK_TOKEN, aes_key=AES_KEY
            )
            binds = [lab_config.binding(f"b-{u[2:]}", u, cals[u].url) for u in names]
            people = [(u, f"{u[2:]}@acme.example") for u in names]
            acme = lab_config.tenant("acme", app, binds, directory=people)
            settings: dict[str, Any] = {
                "redis_url": redis.url,
                "log": {"format": "json", "level": "warning"},
            }
            if push:
                settings["webdav_push"] = {"public_url": f"https://127.0.0.1:{port}"}
            lab_config.write_config_dir(root / "config", settings, [acme])
            client = Redis.from_url(redis.url)
            async with AsyncExitStack() as web_app:
                if push:
                    await web_app.enter_async_context(_push_web(root / "config", tls, port))
                worker = _worker(root / "config", root / "worker.log", source)
                try:
                    urls = {u: c.url for u, c in cals.items()}
                    yield Stack(dav, sandbox, client, urls, {u: c.path for u, c in cals.items()})
                finally:
                    await client.aclose()
    finally:
        if worker is not None:
            _stop(worker)
        redis.stop()
        dav.stop()
        shutil.rmtree(dav.workdir, ignore_errors=True)
        shutil.rmtree(redis.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


async def _put(s: aiohttp.ClientSession, url: str, summary_: str) -> None:
    text = vcalendar(vevent(7, first_slot(), summary_))
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    async with s.put(url + "bench-edit.ics", data=text.encode(), headers=headers) as resp:
        if resp.status not in (201, 204):
            raise RuntimeError(f"PUT {url} answered {resp.status}")


async def _arrived(stack: Stack, user: str, summary_: str) -> float:
    """Wait until the sandbox holds ``summary_`` in ``user``'s calendar; when (perf_counter)."""
    deadline = time.perf_counter() + TIMEOUT_S
    while time.perf_counter() < deadline:
        if any(e.get("summary") == summary_ for e in stack.sandbox.sandbox.events_of(user)):
            return time.perf_counter()
        await asyncio.sleep(CHECK_EVERY_S)
    raise RuntimeError(f"{summary_!r} did not reach DingTalk within {TIMEOUT_S:g} s")


def _requests(stack: Stack) -> dict[str, Counter[str]]:
    """Requests so far per calendar path, by method."""
    out: dict[str, Counter[str]] = {p: Counter() for p in stack.paths.values()}
    for ex in stack.dav.exchanges():
        for path in out:
            if ex.path.startswith(path):
                out[path][ex.method] += 1
    return out


async def _idle_rate(stack: Stack, seconds: float) -> dict[str, float]:
    """CalDAV requests per binding per hour while nothing changes (median over bindings)."""
    before = _requests(stack)
    await asyncio.sleep(seconds)
    after = _requests(stack)
    per_hour = 3600.0 / seconds
    out = {}
    for method in ("REPORT", "PROPFIND", "all"):
        counts = []
        for path, c in after.items():
            was = before[path]
            n = sum(c.values()) - sum(was.values()) if method == "all" else c[method] - was[method]
            counts.append(n * per_hour)
        out[method] = sorted(counts)[len(counts) // 2]
        out[f"{method}_total_window"] = sum(counts) / per_hour
    return out


async def _edit_binding(
    stack: Stack, s: aiohttp.ClientSession, user: str, o: dict[str, Any]
) -> None:
    rng = random.Random(f"{user}-{o['variant']}")
    await asyncio.sleep(rng.uniform(0, o["spread"]))
    for k in range(1 + o["followups"]):
        if k:
            await asyncio.sleep(rng.uniform(5, 20))
        text = f"Edit {k} of {user} {rng.random():.6f}"
        t0 = time.perf_counter()
        await _put(s, stack.urls[user], text)
        seen = await _arrived(stack, user, text)
        stack.edits.append(("first" if k == 0 else "follow-up", seen - t0))


async def _variant(name: str, source: Path | None, o: dict[str, Any]) -> dict[str, Any]:
    async with running(o["n"], source, name) as stack, aiohttp.ClientSession() as s:
        names = list(stack.urls)
        await asyncio.gather(*(_put(s, stack.urls[u], f"Seed {u}") for u in names))
        await asyncio.gather(*(_arrived(stack, u, f"Seed {u}") for u in names))
        await asyncio.sleep(3.0)  # the seed's follow-up runs
        refs = [BindingRef("acme", f"b-{u[2:]}") for u in names]
        await stack.redis.delete(*(keys.binding_key(r, keys.CHANGED) for r in refs))
        await asyncio.sleep(POLL_INTERVAL_S * 2)  # every binding re-scheduled as idle
        commands = int((await stack.redis.info("stats"))["total_commands_processed"])
        idle = await _idle_rate(stack, o["idle"])
        commands = int((await stack.redis.info("stats"))["total_commands_processed"]) - commands
        idle["redis_commands_per_s"] = round(commands / o["idle"], 1)
        started = _requests(stack)
        t0 = time.perf_counter()
        await asyncio.gather(*(_edit_binding(stack, s, u, {**o, "variant": name}) for u in names))
        edit_s = time.perf_counter() - t0
        during = _requests(stack)
    reports = [during[p]["REPORT"] - started[p]["REPORT"] for p in during]
    return {
        "variant": name,
        "syncd": syncd_of(source),
        "idle_per_binding_per_hour": idle,
        "first": _lat([t for k, t in stack.edits if k == "first"]),
        "follow_up": _lat([t for k, t in stack.edits if k == "follow-up"]),
        "all": _lat([t for _, t in stack.edits]),
        "edit_phase_s": round(edit_s, 1),
        "edit_phase_reports_per_binding": sorted(reports)[len(reports) // 2],
    }


def _lat(values: list[float]) -> dict[str, Any]:
    return {**summary(values), "p50": percentile(values, 50)}


# --- the day model (computed) ----------------------------------------------------------------

DAY_MODELS: dict[str, list[float]] = {
    "idle all day": [],
    "3 editing sessions (09:30, 14:00, 16:30)": [9.5, 14.0, 16.5],
    "8 sessions, one every 70 min from 09:00": [9 + 70 / 60 * i for i in range(8)],
    "16 sessions, one every 35 min from 09:00": [9 + 35 / 60 * i for i in range(16)],
}
SESSION_EDITS = (0.0, 15.0, 40.0, 60.0)  # seconds into a session: 4 edits within a minute


def day_polls(sessions_h: list[float], cadence: PollCadence, base: float) -> int:
    """Polls of one binding in 24 h: each poll that finds an edit made since the previous
    poll notes a change (fast polls follow), as the worker does."""
    edits = sorted(h * 3600 + s for h in sessions_h for s in SESSION_EDITS)
    t, polls, last_change, i = 0.0, 0, None, 0
    while t < 86400:
        polls += 1
        seen = False
        while i < len(edits) and edits[i] <= t:
            seen, i = True, i + 1
        if seen:
            last_change = t
        since = None if last_change is None else t - last_change
        t += cadence.interval(base, since)
    return polls


def day_model() -> list[dict[str, Any]]:
    """Polls a day per binding for each model, adaptive vs fixed ``poll_interval``."""
    fixed = int(86400 / POLL_INTERVAL_S)
    out = []
    for name, sessions in DAY_MODELS.items():
        n = day_polls(sessions, PollCadence(), POLL_INTERVAL_S)
        out.append({"model": name, "adaptive": n, "fixed": fixed, "ratio": round(n / fixed, 2)})
    return out


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Both variants one after the other, then the day model."""
    o = {
        "n": opts.get("load_bindings_cdl") or DEFAULTS["bindings"],
        "idle": opts.get("idle_s", DEFAULTS["idle"]),
        "spread": opts.get("spread_s", DEFAULTS["spread"]),
        "followups": opts.get("followups", DEFAULTS["followups"]),
    }
    ref = opts.get("before_ref") or DEFAULTS["before_ref"]
    variants = (opts.get("variants") or DEFAULTS["variants"]).split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-before-") as tmp:
        for name in variants:
            source = _source_of(ref, Path(tmp)) if name == "before" else None
            results.append(await _variant(name, source, o))
    return {**o, "before_ref": ref, "variants": results, "day_model": day_model()}


def render(result: dict[str, Any]) -> str:
    """Markdown: latency per variant and kind of edit, idle request rate, the day model."""
    rows = []
    for v in result["variants"]:
        for kind in ("first", "follow_up", "all"):
            r = v[kind]
            rows.append([v["variant"], kind, r["n"], ms(r["p50"]), ms(r["p95"]), ms(r["max"])])
    out = table(["variant", "edits", "count", "p50", "p95", "max"], rows)
    idle_rows = [
        [
            v["variant"],
            f"{v['idle_per_binding_per_hour']['REPORT']:.0f}",
            f"{v['idle_per_binding_per_hour']['PROPFIND']:.0f}",
            f"{v['idle_per_binding_per_hour']['all']:.0f}",
            v["edit_phase_reports_per_binding"],
            v["edit_phase_s"],
            v["idle_per_binding_per_hour"].get("redis_commands_per_s", "-"),
        ]
        for v in result["variants"]
    ]
    out += "\n\n" + table(
        [
            "variant",
            "idle REPORT /binding/h",
            "idle PROPFIND /binding/h",
            "idle all /binding/h",
            "REPORTs per binding in edit phase",
            "edit phase s",
            "idle Redis commands/s (whole worker)",
        ],
        idle_rows,
    )
    day = [
        [d["model"], d["adaptive"], d["fixed"], f"{d['ratio']:.2f}"] for d in result["day_model"]
    ]
    head = ["day model (computed)", "adaptive polls/day", "fixed 30 s", "ratio"]
    out += "\n\n" + table(head, day)
    return out
