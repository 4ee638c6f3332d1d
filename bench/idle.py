"""Benchmark 1 — idle reconcile cost: syncd vs vdirsyncer 0.21, same Radicale, same N.

Setup per N: one Radicale holds calendar A (bound by syncd to u-alice in the sandbox) and
calendar B; both are seeded with the same N events (one collection PUT each). syncd runs a
full reconcile (creates the N events in DingTalk) and reconciles until a run writes
nothing; vdirsyncer ``discover``s and syncs A⇄B (CalDAV⇄CalDAV) until a run writes nothing.

Measured, interleaved so machine noise hits both alike (``repeat`` rounds):
  * syncd: one idle reconcile (``syncd.worker.tasks.run_once``, i.e. what a worker job runs
    under its lock, with the worker's shared session, token cache and Redis store);
  * vdirsyncer: one ``vdirsyncer sync`` process (what its systemd timer runs).
Per run: wall time, DingTalk requests (sandbox counters), CalDAV requests and Radicale's
own answer time (its request log). Then ``full_repeat`` full reconciles (``full=True``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import structlog

from bench._report import requests_text, table
from bench._rig import Rig, first_slot, open_rig, seed_caldav, server_ms
from bench._stats import delta, median, ms, summary
from bench._vdirsyncer import VdirPair, ensure_vdirsyncer, version
from syncd.model import Changes
from syncd.sync import make_plan
from syncd.worker.wiring import policy_for
from tests.fixtures.caldav_servers import make_calendar
from tests.fixtures.spine import REF

log = structlog.get_logger(__name__)

WRITES = ("PUT", "DELETE", "MKCALENDAR", "PROPPATCH")
DEFAULTS = {"sizes": [100, 1000], "repeat": 10, "full_repeat": 3}


def _writes(counts: dict[str, int]) -> int:
    return sum(counts.get(m, 0) for m in WRITES)


async def _syncd_run(rig: Rig, *, full: bool = False) -> dict[str, Any]:
    d0, c0, s0 = rig.dingtalk_requests(), rig.caldav_requests(), rig.caldav_server_ms()
    started = time.perf_counter()
    report = await rig.reconcile(full=full)
    wall = time.perf_counter() - started
    dav = delta(rig.caldav_requests(), c0)
    return {
        "wall_s": wall,
        "dingtalk": delta(rig.dingtalk_requests(), d0),
        "caldav": dav,
        "server_ms": rig.caldav_server_ms() - s0,
        "written": report.counts.created + report.counts.updated + report.counts.deleted,
        "caldav_writes": _writes(dav),
    }


def _vdir_run(rig: Rig, pair: VdirPair, prefix: str, *args: str) -> dict[str, Any]:
    c0, s0 = rig.caldav_requests(prefix), server_ms(rig.dav, prefix)
    wall = pair.run(*args)
    dav = delta(rig.caldav_requests(prefix), c0)
    return {
        "wall_s": wall,
        "caldav": dav,
        "server_ms": server_ms(rig.dav, prefix) - s0,
        "caldav_writes": _writes(dav),
    }


async def _settle_syncd(rig: Rig) -> dict[str, Any]:
    """Initial full reconcile, then runs until one writes nothing (at most 3)."""
    first = await _syncd_run(rig, full=True)
    for _ in range(3):
        again = await _syncd_run(rig)
        if again["written"] == 0 and again["caldav_writes"] == 0:
            return first
    raise RuntimeError(f"syncd did not settle: last run {again}")


def _settle_vdir(rig: Rig, pair: VdirPair, prefix: str) -> dict[str, Any]:
    pair.run("discover")
    first = _vdir_run(rig, pair, prefix, "sync")
    for _ in range(3):
        again = _vdir_run(rig, pair, prefix, "sync")
        if again["caldav_writes"] == 0:
            return first
    raise RuntimeError(f"vdirsyncer did not settle: last run {again}")


def _same_counts(runs: list[dict[str, Any]], key: str) -> dict[str, int] | str:
    """The request counts if every run made the same requests, else ``"varies"``."""
    seen = {tuple(sorted(r[key].items())) for r in runs}
    return dict(next(iter(seen))) if len(seen) == 1 else "varies"


async def measure(n: int, repeat: int, full_repeat: int, exe: Path) -> dict[str, Any]:
    """Everything for one size ``n``."""
    async with open_rig() as rig:
        start = first_slot()
        other = make_calendar(rig.dav)
        seeded = time.perf_counter()
        seed_caldav(rig.calendar, n, start)
        seed_caldav(other, n, start)
        seed_s = time.perf_counter() - seeded
        syncd_first = await _settle_syncd(rig)
        pair = VdirPair(exe, rig.root / "vdirsyncer", rig.calendar.url, other.url)
        vdir_first = _settle_vdir(rig, pair, f"/{rig.calendar.username}/")
        prefix = f"/{rig.calendar.username}/"
        syncd_idle: list[dict[str, Any]] = []
        vdir_idle: list[dict[str, Any]] = []
        for _ in range(repeat):
            syncd_idle.append(await _syncd_run(rig))
            vdir_idle.append(_vdir_run(rig, pair, prefix, "sync"))
        full = [await _syncd_run(rig, full=True) for _ in range(full_repeat)]
        parts = await _breakdown(rig, repeat)
        startup = [pair.startup_seconds() for _ in range(5)]
    return {
        "n": n,
        "seed_two_calendars_s": seed_s,
        "syncd_initial": syncd_first,
        "vdirsyncer_first_sync": vdir_first,
        "syncd_idle": _digest(syncd_idle),
        "vdirsyncer_idle": _digest(vdir_idle),
        "syncd_full": _digest(full),
        "vdirsyncer_startup_s": median(startup),
        "syncd_idle_parts_s": parts,
    }


async def _breakdown(rig: Rig, repeat: int) -> dict[str, float]:
    """Medians of the CPU-side parts of an idle run: what it loads from Redis (the pairs its
    changes name: none), and the pure planner over every stored pair (loaded once, not
    timed) with both sides reporting no change."""
    store = rig.ctx.store
    tenant = rig.config.tenant(REF.tenant)
    policy = policy_for(rig.config, tenant.binding(REF.binding))
    nothing = Changes((), (), "unchanged", complete=False)
    loads, plans = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        await store.load_touched(REF)
        loads.append(time.perf_counter() - started)
        pairs = await store.load_pairs(REF)
        started = time.perf_counter()
        plan = make_plan(pairs, nothing, nothing, policy)
        plans.append(time.perf_counter() - started)
        if plan.actions:
            raise RuntimeError(f"an idle plan has actions: {plan.actions[:3]}")
    return {"load_pairs": median(loads), "plan": median(plans), "pairs": len(pairs)}


def _digest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "wall": summary([r["wall_s"] for r in runs]),
        "server_ms_median": median([r["server_ms"] for r in runs]),
        "caldav": _same_counts(runs, "caldav"),
        "writes": sum(r["caldav_writes"] for r in runs),
    }
    if "dingtalk" in runs[0]:
        out["dingtalk"] = _same_counts(runs, "dingtalk")
        out["written"] = sum(r["written"] for r in runs)
    return out


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 1 over ``opts['sizes']``."""
    exe = ensure_vdirsyncer()
    sizes = [await measure(n, opts["repeat"], opts["full_repeat"], exe) for n in opts["sizes"]]
    return {"vdirsyncer": version(exe), "repeat": opts["repeat"], "sizes": sizes}


def _counts(value: dict[str, int] | str) -> str:
    return value if isinstance(value, str) else requests_text(value)


def render(result: dict[str, Any]) -> str:
    """Markdown table of the idle comparison, and the full-reconcile times."""
    rows = []
    for size in result["sizes"]:
        s, v, f = size["syncd_idle"], size["vdirsyncer_idle"], size["syncd_full"]
        ratio = v["wall"]["median"] / s["wall"]["median"] if s["wall"]["median"] else 0.0
        rows.append(
            [
                f"syncd idle, N={size['n']}",
                ms(s["wall"]["median"]),
                ms(s["wall"]["p95"]),
                _counts(s["dingtalk"]),
                _counts(s["caldav"]),
                f"{s['server_ms_median']:.0f} ms",
                f"1 (vdirsyncer: {ratio:.1f}×)",
            ]
        )
        rows.append(
            [
                f"vdirsyncer idle, N={size['n']}",
                ms(v["wall"]["median"]),
                ms(v["wall"]["p95"]),
                "—",
                _counts(v["caldav"]),
                f"{v['server_ms_median']:.0f} ms",
                f"{ratio:.1f} (startup {ms(size['vdirsyncer_startup_s'])})",
            ]
        )
        rows.append(
            [
                f"syncd full, N={size['n']}",
                ms(f["wall"]["median"]),
                ms(f["wall"]["p95"]),
                _counts(f["dingtalk"]),
                _counts(f["caldav"]),
                f"{f['server_ms_median']:.0f} ms",
                "—",
            ]
        )
    header = [
        "run",
        "wall median",
        "wall p95",
        "DingTalk requests",
        "CalDAV requests",
        "Radicale answer time (median)",
        "time ratio vs syncd idle",
    ]
    notes = [
        f"N={size['n']}: of syncd's idle run, the Redis read before planning "
        f"({p['pairs']} pairs stored, none named by a change) takes {ms(p['load_pairs'])}, "
        f"and the pure planner over all {p['pairs']} pairs {ms(p['plan'])} (medians)"
        for size in result["sizes"]
        if (p := size.get("syncd_idle_parts_s"))
    ]
    return table(header, rows) + "".join(f"\n\n{n}." for n in notes)
