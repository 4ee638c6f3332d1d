"""Benchmark — big calendars (issue 13, targets 3 and 6): what one change costs at N events.

Setup per N: Radicale's calendar A is seeded with N one-hour events (one collection PUT),
bound to u-alice's DingTalk calendar in the sandbox; a full reconcile copies them into
DingTalk, then runs until one writes nothing. Then ``repeat`` rounds, each:

  * one idle reconcile (``syncd.worker.tasks.run_once``): wall time, requests per side;
  * one change: a CalDAV client rewrites one event (a PUT), then both
      - the raw sync-collection REPORT a client would send with syncd's stored CalDAV
        cursor (the baseline: what the server alone costs for "what changed?"), and
      - syncd's reconcile carrying the change to DingTalk,
    in alternating order; wall time of each, requests per side of the reconcile;
  * the pair loading alone (what the reconcile reads from Redis before planning).

Then, once each: the peak RSS of a ``syncd sync`` process carrying one change, and of a
``syncd sync --full`` (``os.wait4``),
and Redis bytes per mapped pair (``MEMORY USAGE`` over the binding's pair hash and its two
index hashes, divided by the number of pairs).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from bench._report import requests_text, table
from bench._rig import Rig, first_slot, open_rig, seed_caldav, vcalendar, vevent
from bench._stats import delta, median, ms, summary
from syncd.model import Side
from syncd.store import keys
from syncd.store.guard import awaited
from tests.fixtures.caldav_servers import http
from tests.fixtures.spine import REF

log = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"sizes": [1000, 10000], "repeat": 5}

_REPORT = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
    "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
)


async def _run(rig: Rig) -> dict[str, Any]:
    d0, c0 = rig.dingtalk_requests(), rig.caldav_requests()
    started = time.perf_counter()
    report = await rig.reconcile()
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "dingtalk": delta(rig.dingtalk_requests(), d0),
        "caldav": delta(rig.caldav_requests(), c0),
        "written": report.counts.created + report.counts.updated + report.counts.deleted,
    }


def _edit(rig: Rig, i: int, round_no: int) -> None:
    """A CalDAV client rewrites event ``i`` (a new summary)."""
    text = vcalendar(vevent(i, first_slot(), summary=f"Edited {i} round {round_no}"))
    status, _ = rig.calendar.put_raw(f"bench-{i:05d}@client.example.ics", text)
    if status not in (200, 201, 204):
        raise RuntimeError(f"editing event {i} answered {status}")


def _raw_report(rig: Rig, token: str) -> float:
    """One sync-collection REPORT with ``token``, as any client sends it: its wall time."""
    body = _REPORT.format(token=token).encode()
    headers = {"Content-Type": "application/xml; charset=utf-8", "Depth": "1"}
    started = time.perf_counter()
    status, _, _ = http(rig.calendar.url, "REPORT", body, headers, 600, auth=rig.calendar.auth)
    wall = time.perf_counter() - started
    if status != 207:
        raise RuntimeError(f"raw REPORT answered {status}")
    return wall


async def _one_change(rig: Rig, n: int, round_no: int) -> dict[str, Any]:
    token = await rig.ctx.store.get_cursor(REF, Side.CALDAV)
    if token is None:
        raise RuntimeError("no CalDAV cursor after settling")
    _edit(rig, (round_no * 7919) % n, round_no)
    if round_no % 2:
        raw = _raw_report(rig, token)
        run = await _run(rig)
    else:
        run = await _run(rig)
        raw = _raw_report(rig, token)
    if run["written"] != 1:
        raise RuntimeError(f"one change wrote {run['written']} items")
    return {**run, "raw_report_s": raw, "ratio": run["wall_s"] / raw}


async def _load_time(rig: Rig) -> float:
    """What an incremental run reads from Redis before planning, nothing having changed."""
    store = rig.ctx.store
    started = time.perf_counter()
    if hasattr(store, "load_touched"):  # since issue 13; before, every run loaded every pair
        await store.load_touched(REF, dingtalk_ids=(), hrefs=(), uids=())
    else:
        await store.load_pairs(REF)
    return time.perf_counter() - started


async def _redis_bytes(rig: Rig) -> dict[str, Any]:
    redis = rig.pool
    names = (keys.PAIRS, keys.BY_DINGTALK, keys.BY_HREF)
    per_key = {
        n: int(await redis.memory_usage(keys.binding_key(REF, n), samples=0) or 0) for n in names
    }
    pairs = int(await awaited(redis.hlen(keys.binding_key(REF, keys.PAIRS))))
    return {"per_key": per_key, "pairs": pairs, "per_pair": sum(per_key.values()) / pairs}


# Linux carries a process's peak RSS across exec: a child forked from this (large) process
# would report at least this process's RSS. A small Python forks the measured command and
# prints the peak RSS of that grandchild only (ru_maxrss, KiB).
_MEASURE = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def _child(argv: list[str]) -> tuple[int, float, float, str]:
    """Run ``argv``: its exit code, peak RSS in MB, wall time and the tail of its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the checkout this benchmark runs from
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], env=env, capture_output=True, check=True
    )
    wall = time.perf_counter() - started
    code, kib = out.stdout.split()
    return int(code), int(kib) / 1024, wall, out.stderr.decode(errors="replace")[-2000:]


async def _cli_rss(rig: Rig, n: int, *flags: str) -> dict[str, Any]:
    """Peak RSS and wall time of a ``syncd sync`` process carrying one change."""
    _edit(rig, n // 2, 999 + len(flags))
    exe = Path(sys.executable).with_name("syncd")
    config = str(rig.root / "config")
    argv = [str(exe), "sync", "--config", config, *flags, REF.tenant, REF.binding]
    # In a thread: the sandbox the child talks to runs on this event loop.
    status, rss, wall, stderr = await asyncio.to_thread(_child, argv)
    _progress(f"syncd sync {' '.join(flags)}: status {status}, {rss:.0f} MB, {wall:.1f} s")
    if status != 0:  # recorded, not raised: the figures measured so far are kept
        _progress(stderr)
        return {"peak_rss_mb": rss, "wall_s": wall, "exit_status": status, "stderr": stderr}
    return {"peak_rss_mb": rss, "wall_s": wall, "exit_status": 0}


def _progress(line: str) -> None:
    """A line on stderr as the run goes (a long run that fails late keeps its figures)."""
    print(line, file=sys.stderr, flush=True)


async def measure(n: int, repeat: int) -> dict[str, Any]:
    """Everything for one size ``n``."""
    async with open_rig() as rig:
        seed_caldav(rig.calendar, n, first_slot())
        _raw_report(rig, "")  # Radicale builds its item cache on the first listing
        started = time.perf_counter()
        await rig.reconcile(full=True)
        initial = time.perf_counter() - started
        for _ in range(3):
            if (await _run(rig))["written"] == 0:
                break
        idle, change, loads = [], [], []
        _progress(f"N={n}: initial full sync {initial:.0f} s")
        for r in range(repeat):
            idle.append(await _run(rig))
            change.append(await _one_change(rig, n, r))
            loads.append(await _load_time(rig))
            c = change[-1]
            _progress(
                f"N={n} round {r}: idle {idle[-1]['wall_s'] * 1000:.0f} ms, one change "
                f"{c['wall_s'] * 1000:.0f} ms, raw REPORT {c['raw_report_s'] * 1000:.0f} ms, "
                f"ratio {c['ratio']:.2f}, DingTalk {c['dingtalk']}, CalDAV {c['caldav']}"
            )
        rss = await _cli_rss(rig, n)
        rss_full = await _cli_rss(rig, n, "--full")
        memory = await _redis_bytes(rig)
    return {
        "n": n,
        "initial_full_s": initial,
        "idle": _digest(idle),
        "change": {
            **_digest(change),
            "raw_report": summary([c["raw_report_s"] for c in change]),
            "ratio_median": median([c["ratio"] for c in change]),
        },
        "pair_load_s": median(loads),
        "cli_one_change": rss,
        "cli_full": rss_full,
        "redis": memory,
    }


def _same(runs: list[dict[str, Any]], key: str) -> dict[str, int] | str:
    seen = {tuple(sorted(r[key].items())) for r in runs}
    return dict(next(iter(seen))) if len(seen) == 1 else "varies"


def _digest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall": summary([r["wall_s"] for r in runs]),
        "dingtalk": _same(runs, "dingtalk"),
        "caldav": _same(runs, "caldav"),
    }


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """The big-calendar benchmark over ``opts['sizes']``."""
    sizes = [await measure(n, opts["repeat"]) for n in opts["sizes"]]
    return {"repeat": opts["repeat"], "sizes": sizes}


def _all_ok(size: dict[str, Any]) -> bool:
    runs = (size.get("cli_one_change", {}), size.get("cli_full", {}))
    return all(r.get("exit_status", 0) == 0 for r in runs)


def _counts(value: dict[str, int] | str) -> str:
    return value if isinstance(value, str) else requests_text(value)


def render(result: dict[str, Any]) -> str:
    """Markdown table: per N, idle and one-change cost, the raw REPORT, RSS, Redis bytes."""
    rows = []
    for s in result["sizes"]:
        i, c = s["idle"], s["change"]
        rows.append(
            [
                f"{s['n']:,}",
                ms(i["wall"]["median"]),
                f"{_counts(i['dingtalk'])}; {_counts(i['caldav'])}",
                ms(c["wall"]["median"]),
                ms(c["raw_report"]["median"]),
                f"{c['ratio_median']:.2f}×",
                f"{_counts(c['dingtalk'])}; {_counts(c['caldav'])}",
                ms(s["pair_load_s"]),
                f"{s['cli_one_change']['peak_rss_mb']:.0f} MB"
                + (f"; full: {s['cli_full']['peak_rss_mb']:.0f} MB" if "cli_full" in s else "")
                + ("" if _all_ok(s) else " (a run failed: see its JSON)"),
                f"{s['redis']['per_pair']:.0f} B",
                ms(s["initial_full_s"]),
            ]
        )
    header = [
        "N",
        "idle run (median)",
        "idle requests (DingTalk; CalDAV)",
        "one-change run (median)",
        "raw REPORT (median)",
        "run ÷ REPORT (median of ratios)",
        "one-change requests (DingTalk; CalDAV)",
        "pair load, idle",
        "`syncd sync` peak RSS (one change; `--full`)",
        "Redis per pair",
        "initial full sync",
    ]
    return table(header, rows)
