"""Benchmark — a fleet of idle bindings: what one idle poll costs, and whether polls keep up.

For each size N (``--fleet-sizes``, default 1,000): N sandbox users each bound to their
own Radicale calendar holding ``--fleet-events`` (3) items, one tenant, synced in-process
first (see :mod:`bench._fleet_setup`). Then one real ``syncd worker`` process (the CLI;
``--fleet-workers`` for more, their CPU and RSS summed;
JSON logs at info, ``dingtalk.qps`` at syncd's default unless ``--fleet-qps``) runs for
``--window`` seconds (``WARM_UP_S`` after it logged ``worker_started``) with no change
anywhere. Measured over the window:

* **worker CPU**: utime + stime of the worker process (``/proc/PID/stat``);
* **Redis commands**: the ``INFO commandstats`` delta, per command (the benchmark's own
  ``ZCARD`` samples and ``INFO`` calls taken out);
* **HTTP requests per side**: the sandbox's per-operation counters, Radicale's log lines;
* **polls**: the worker's ``reconciled`` log lines (one per reconcile that ran), and how
  many distinct bindings they covered, against the polls due (N × window ÷ the idle
  interval, ``poll_interval`` × ``poll_cadence.idle_factor``: the set-up's sync records no
  change in the poll schedule, so every binding polls at its idle pace);
* queue depth (``ZCARD arq:queue``, every second), worker RSS, Redis ``used_memory``
  before and after the initial sync (÷ N).

Costs are given per poll and per binding per second (which includes what does not depend
on polls: crons, arq's queue polling). The benchmark is independent of how the worker
schedules polls: it only counts what the process did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, create_pool
from arq.constants import default_queue_name

from bench import _fleet_setup as setup
from bench._report import table
from bench._stats import median
from syncd import queue
from syncd.config import PollCadence, load_config
from syncd.model import BindingRef
from syncd_lab.stack.caldav_base import start_group, stop_group
from tests.fixtures.caldav_servers import CalDAVServer, start_caldav_server
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.fixtures.sandbox import SandboxHandle, start_sandbox

DEFAULTS: dict[str, Any] = {
    "sizes": [1000],
    "events": 3,
    "window": 90.0,
    "poll_interval": 30.0,
    "concurrency": 16,
    "synced": 0,  # bindings synced before the worker starts, first in config order; 0: all
    "qps": 0.0,  # the worker's dingtalk.qps; 0: syncd's default
    "listed": 0,  # 1: record each synced binding's DingTalk listing as fresh before the window
    "workers": 1,  # syncd worker processes (CPU and RSS summed over them)
}
REPO = Path(__file__).resolve().parents[1]
WARM_UP_S = 15.0
IDLE_SAMPLE = 1000
SAMPLE_EVERY_S = 1.0
_TICK = os.sysconf("SC_CLK_TCK")
_NAMED = re.compile(r"fleet-\d+-\d+|f\d{5}|[0-9a-f]{32}")
_RADICALE = re.compile(r"\[INFO\] (?P<method>[A-Z]+) response status for ")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@dataclass
class LogCount:
    """Counts lines of a growing log from an offset: Radicale's methods, syncd's runs."""

    path: Path
    offset: int = 0

    def mark(self) -> None:
        """Start counting from the current end."""
        self.offset = self.path.stat().st_size

    def text(self) -> str:
        """What was appended since :meth:`mark`."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")


def radicale_methods(text: str) -> Counter[str]:
    """Requests Radicale answered in ``text``, per method."""
    return Counter(m["method"] for m in _RADICALE.finditer(text))


def worker_runs(text: str) -> list[tuple[str, int]]:
    """``(binding, writes)`` of every ``reconciled`` line in the worker's JSON log ``text``."""
    runs = []
    for line in text.splitlines():
        if '"reconciled"' not in line:
            continue
        entry = json.loads(line[line.index("{") :])
        if entry.get("event") == "reconciled":
            writes = sum(int(entry.get(k, 0)) for k in ("created", "updated", "deleted"))
            runs.append((str(entry.get("binding", "?")), writes))
    return runs


async def commandstats(pool: ArqRedis) -> Counter[str]:
    """``INFO commandstats`` calls per command."""
    info = await pool.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()})


async def used_memory(pool: ArqRedis) -> int:
    """Redis ``used_memory`` in bytes."""
    return int((await pool.info("memory"))["used_memory"])


def key_shape(key: str) -> str:
    """``key`` with the user, binding or item it names replaced by ``*`` (key kinds)."""
    return _NAMED.sub("*", key)


async def memory_by_shape(pool: ArqRedis) -> dict[str, dict[str, int]]:
    """Keys and ``MEMORY USAGE`` bytes per key shape (see :func:`key_shape`)."""
    keys = [k.decode() async for k in pool.scan_iter(count=1000)]
    async with pool.pipeline(transaction=False) as pipe:
        for k in keys:
            pipe.memory_usage(k, samples=0)
        sizes = await pipe.execute()
    shapes: dict[str, dict[str, int]] = {}
    for k, size in zip(keys, sizes, strict=True):
        entry = shapes.setdefault(key_shape(k), {"keys": 0, "bytes": 0})
        entry["keys"] += 1
        entry["bytes"] += int(size or 0)
    return dict(sorted(shapes.items(), key=lambda kv: -kv[1]["bytes"]))


@dataclass
class Window:
    """What the measured window saw."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    redis: Counter[str] = field(default_factory=Counter)
    dingtalk: Counter[str] = field(default_factory=Counter)
    caldav: Counter[str] = field(default_factory=Counter)
    runs: list[tuple[str, int]] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)


async def _sample(pool: ArqRedis, pids: list[int], win: Window, stop: asyncio.Event) -> None:
    while not stop.is_set():
        win.depth.append(int(await pool.zcard(default_queue_name)))
        win.rss.append(sum(rss_mb(pid) for pid in pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def measure(
    pool: ArqRedis,
    pids: list[int],
    sandbox: SandboxHandle,
    logs: tuple[LogCount, list[LogCount]],
    s: float,
) -> Window:
    """Every counter's delta over ``s`` seconds of the running workers ``pids``."""
    dav_log, worker_logs = logs
    win = Window()
    for log in (dav_log, *worker_logs):
        log.mark()
    dt0 = Counter(sandbox.sandbox.stats()["requests"])
    cmd0, cpu0, t0 = await commandstats(pool), _cpu(pids), time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(pool, pids, win, stop))
    await asyncio.sleep(s)
    stop.set()
    await sampler
    win.cpu_s = _cpu(pids) - cpu0
    win.seconds = time.monotonic() - t0
    win.redis = await commandstats(pool) - cmd0
    win.redis["zcard"] -= len(win.depth)  # the benchmark's own samples
    win.redis.pop("info", None)
    win.dingtalk = Counter(sandbox.sandbox.stats()["requests"]) - dt0
    await asyncio.sleep(0.5)  # Radicale logs after answering
    win.caldav = radicale_methods(dav_log.text())
    win.runs = [run for log in worker_logs for run in worker_runs(log.text())]
    return win


def _per(total: float, n: float, digits: int = 2) -> float | None:
    return round(total / n, digits) if n else None


def summarise(n: int, interval: float, win: Window) -> dict[str, Any]:
    """Per-poll and per-binding-second costs, and whether the polls kept up.

    ``interval`` is the idle one (``poll_interval`` × ``idle_factor``): no binding changed.
    """
    polls, s = len(win.runs), win.seconds
    redis_total = sum(win.redis.values())
    due = n * s / interval
    return {
        "window_s": round(s, 1),
        "polls": polls,
        "polls_due": round(due),
        "polls_per_s": round(polls / s, 2),
        "due_per_s": round(n / interval, 2),
        "kept_up": polls >= 0.9 * due,
        "distinct_bindings_polled": len({b for b, _ in win.runs}),
        "writes_in_window": sum(w for _, w in win.runs),
        "cpu_s": round(win.cpu_s, 2),
        "cpu_share_of_core": round(win.cpu_s / s, 3),
        "cpu_ms_per_poll": _per(win.cpu_s * 1000, polls),
        "redis_commands": redis_total,
        "redis_per_poll": _per(redis_total, polls),
        "redis_per_s": round(redis_total / s, 1),
        "redis_by_command": dict(win.redis.most_common()),
        "dingtalk_requests": dict(win.dingtalk),
        "dingtalk_per_poll": _per(sum(win.dingtalk.values()), polls),
        "caldav_requests": dict(win.caldav),
        "caldav_per_poll": _per(sum(win.caldav.values()), polls),
        "per_binding_per_s": {
            "cpu_us": round(win.cpu_s * 1e6 / s / n, 2),
            "redis_commands": round(redis_total / s / n, 4),
        },
        "queue_depth": {"median": median(win.depth), "max": max(win.depth, default=0)},
        "worker_rss_mb": {"median": median(win.rss), "max": max(win.rss, default=0.0)},
    }


def _logged(log: Path, event: str) -> bool:
    return f'"{event}"' in log.read_text(errors="replace")


async def _until_logged(log: Path, event: str, within: float = 300.0) -> None:
    """Wait until ``log`` holds ``event`` (the worker has loaded its config and started)."""
    deadline = time.monotonic() + within
    while not _logged(log, event):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log} has no {event} after {within:g} s")
        await asyncio.sleep(0.5)


def _worker_log(root: Path, i: int) -> Path:
    return root / ("worker.log" if i == 0 else f"worker{i}.log")


def _started_worker(root: Path, i: int = 0) -> Any:
    exe = str(Path(sys.executable).parent / "syncd")
    cmd = [exe, "worker", "--config", str(root / "config")]
    return start_group(cmd, _worker_log(root, i), cwd=REPO)


async def one_size(n: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Set up N bindings, sync them, then measure an idle ``syncd worker``."""
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-fleet-"))
    redis: RedisServer = start_redis()
    dav: CalDAVServer = start_caldav_server("radicale", authenticate=False)
    names = setup.users(n)
    interval = opts["poll_interval"]
    try:
        async with start_sandbox(setup.seed(names)) as sandbox:
            pool = await create_pool(queue.redis_settings(redis.url))
            try:
                return await _run(n, opts, root, redis, dav, sandbox, pool, names, interval)
            finally:
                await pool.aclose()
    finally:
        redis.stop()
        dav.stop()
        shutil.rmtree(dav.workdir, ignore_errors=True)
        shutil.rmtree(redis.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Parts:
    """The running parts an in-process pass counts on."""

    pool: ArqRedis
    redis_url: str
    sandbox: SandboxHandle
    dav_log: LogCount


async def idle_pass(n: int, parts: Parts, cfg: Path, conc: int) -> dict[str, Any]:
    """One more in-process reconcile of (synced, unchanged) bindings, counted.

    Without any cron or queue: what one idle poll itself costs, and how many one process
    runs a second with ``conc`` at a time (CPU includes the in-process sandbox). Every
    binding up to :data:`IDLE_SAMPLE`, then an evenly spread sample of that many.
    """
    parts.dav_log.mark()
    stats = parts.sandbox.sandbox.stats
    dt0, cmd0 = Counter(stats()["requests"]), await commandstats(parts.pool)
    every = max(1, n // IDLE_SAMPLE)
    done = await setup.reconcile_all(cfg, parts.redis_url, conc, first=n, every=every)
    n = done.runs
    redis = await commandstats(parts.pool) - cmd0
    redis.pop("info", None)
    dingtalk = Counter(stats()["requests"]) - dt0
    await asyncio.sleep(0.5)  # Radicale logs after answering
    caldav = radicale_methods(parts.dav_log.text())
    return {
        "runs": n,
        "seconds": done.seconds,
        "polls_per_s": round(n / done.seconds, 1),
        "cpu_ms_per_poll_with_sandbox": round(done.cpu_s * 1000 / n, 2),
        "redis_per_poll": round(sum(redis.values()) / n, 2),
        "redis_by_command_per_poll": {k: round(v / n, 2) for k, v in redis.most_common()},
        "dingtalk_per_poll": {k: round(v / n, 3) for k, v in dingtalk.items()},
        "caldav_per_poll": {k: round(v / n, 3) for k, v in caldav.items()},
        "created": done.created,
        "errors": done.errors,
    }


async def mark_listed(cfg: Path, pool: ArqRedis, synced: int) -> None:
    """Record the in-process passes' DingTalk listings as a worker run records them, fresh
    for the tenant's ``list_every`` (``run_once`` does not): the window's polls are then the
    quiet idle polls of a fleet that has been running, not every binding's first poll after
    a start (which lists DingTalk once)."""
    config = load_config(cfg, {})
    for tenant, binding in list(config.bindings())[:synced]:
        every = tenant.dingtalk.list_every
        if every == "always":
            continue  # every run lists DingTalk anyway
        ref = BindingRef(tenant.id, binding.id)
        await queue.dingtalk_listed(pool, ref, listed=True, committed=True, every_s=every)


async def _run(
    n: int,
    opts: dict[str, Any],
    root: Path,
    redis: RedisServer,
    dav: CalDAVServer,
    sandbox: SandboxHandle,
    pool: ArqRedis,
    names: list[str],
    interval: float,
) -> dict[str, Any]:
    t0 = time.monotonic()
    urls = setup.make_calendars(dav, names, opts["events"])
    made_s = round(time.monotonic() - t0, 1)
    mem0 = await used_memory(pool)
    data = setup.tenant_data(sandbox.url, urls, interval, setup.SYNC_QPS)
    cfg = setup.write_config(root / "config", redis.url, data)
    synced = min(n, opts["synced"] or n)
    conc = opts["concurrency"]
    passes = [await setup.reconcile_all(cfg, redis.url, conc, first=synced) for _ in range(2)]
    mem1 = await used_memory(pool)
    by_shape = await memory_by_shape(pool)
    parts = Parts(pool, redis.url, sandbox, LogCount(dav.log_path))
    idle = await idle_pass(synced, parts, cfg, conc)
    if opts["listed"]:
        await mark_listed(cfg, pool, synced)
    data = setup.tenant_data(sandbox.url, urls, interval, opts["qps"] or None)
    setup.write_config(root / "config", redis.url, data)
    workers = [_started_worker(root, i) for i in range(opts["workers"])]
    try:
        for i in range(len(workers)):
            await _until_logged(_worker_log(root, i), "worker_started")
        await asyncio.sleep(WARM_UP_S)
        logs = (
            LogCount(dav.log_path),
            [LogCount(_worker_log(root, i)) for i in range(len(workers))],
        )
        win = await measure(pool, [w.pid for w in workers], sandbox, logs, opts["window"])
    finally:
        for worker in workers:
            stop_group(worker)
    return {
        "bindings": n,
        "events_per_calendar": opts["events"],
        "poll_interval_s": interval,
        "worker_dingtalk_qps": opts["qps"] or "default",
        "listings_marked_fresh": bool(opts["listed"]),
        "workers": opts["workers"],
        "calendars_made_s": made_s,
        "synced_bindings": synced,
        "initial_sync": {
            "seconds_per_pass": [p.seconds for p in passes],
            "created": [p.created for p in passes],
            "errors": [p.errors for p in passes],
            "concurrency": opts["concurrency"],
        },
        "idle_pass": idle,
        "redis_bytes_per_binding": round((mem1 - mem0) / synced),  # per synced binding
        "redis_memory_by_key_shape": by_shape,
        "idle_poll_interval_s": interval * PollCadence().idle_factor,
        **summarise(n, interval * PollCadence().idle_factor, win),
    }


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Every size in turn."""
    conf = {k: opts.get(f"fleet_{k}", v) for k, v in DEFAULTS.items()}
    sizes = [await one_size(n, conf) for n in conf["sizes"]]
    return {"options": conf, "sizes": sizes}


def render(result: dict[str, Any]) -> str:
    """Markdown: one row per size, then the Redis commands per poll."""
    rows = []
    for r in result["sizes"]:
        rows.append(
            [
                f"{r['bindings']:,}",
                f"{r['polls']} / {r['polls_due']} ({r['distinct_bindings_polled']} bindings)",
                f"{r['cpu_share_of_core']:.1%}",
                r["cpu_ms_per_poll"],
                r["redis_per_poll"],
                r["redis_per_s"],
                r["dingtalk_per_poll"],
                r["caldav_per_poll"],
                f"{r['queue_depth']['median']:g} / {r['queue_depth']['max']}",
                f"{r['worker_rss_mb']['max']:g}",
                f"{r['redis_bytes_per_binding']:,}",
            ]
        )
    head = [
        "bindings",
        "polls run / due in window",
        "worker CPU (of a core)",
        "CPU ms per poll",
        "Redis cmds per poll",
        "Redis cmds/s",
        "DingTalk req per poll",
        "CalDAV req per poll",
        "queue depth median / max",
        "worker RSS MB",
        "Redis B per binding",
    ]
    out = table(head, rows)
    idle_rows = [
        [
            f"{r['bindings']:,}",
            r["idle_pass"]["polls_per_s"],
            r["idle_pass"]["cpu_ms_per_poll_with_sandbox"],
            r["idle_pass"]["redis_per_poll"],
            r["idle_pass"]["dingtalk_per_poll"],
            r["idle_pass"]["caldav_per_poll"],
        ]
        for r in result["sizes"]
    ]
    out += "\n\nOne idle reconcile of every binding in-process (no cron, no queue):\n\n"
    out += table(
        [
            "bindings",
            "polls/s (one process)",
            "CPU ms per poll (incl. sandbox)",
            "Redis cmds per poll",
            "DingTalk per poll",
            "CalDAV per poll",
        ],
        idle_rows,
    )
    for r in result["sizes"]:
        top = ", ".join(f"{k} {v}" for k, v in list(r["redis_by_command"].items())[:8])
        out += (
            f"\n\nN = {r['bindings']:,}: initial sync {r['initial_sync']['seconds_per_pass']} s "
            f"per pass; window {r['window_s']} s; Redis commands: {top}; DingTalk: "
            f"{r['dingtalk_requests']}; CalDAV: {r['caldav_requests']}"
        )
    return out
