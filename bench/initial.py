"""Benchmark 3 — initial sync throughput, both directions, against raw sequential writes.

Each direction is measured against the plainest client writing the same number of items
to the same server in the same run, one request after another (issue 13, target 4:
syncd's initial sync ≥ 2× faster than that):

* DingTalk → CalDAV, per CalDAV server (``--servers``, default Radicale and Xandikos): N
  events created in u-alice's sandbox calendar, an empty calendar; one full reconcile
  copies them (N PUTs) at each ``--levels`` concurrency (the binding's ``concurrency``).
  Raw: N sequential ``PUT`` (``If-None-Match: *``, one keep-alive aiohttp session) of
  one-event VCALENDARs to another empty calendar on the same server.
* CalDAV → DingTalk: N events in Radicale (one collection PUT), an empty DingTalk
  calendar; one full reconcile creates them in the sandbox at each level. Raw: N
  sequential ``CreateEvent`` calls (u-bob's calendar, same sandbox, same token kind).
  ``dingtalk.qps`` is set to 10,000 so the fleet-wide pace never waits (the point is what
  concurrency buys); then ``--paced-n`` events at the default ``qps`` 15, each level, show
  the pace holding (at most ``15 / 1.1`` = 13.6 calls/s however many writes are in flight).

Every configuration runs ``--rounds`` times in fresh rigs, raw and syncd alternating which
goes first; the ratios are per round (same moment), and the tables show medians.
Baseline (``initial-vdirsyncer``, a separate name): vdirsyncer 0.21 copying ``baseline_n``
events from one Radicale calendar to an empty one (its first ``sync`` after ``discover``).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from typing import Any

import aiohttp

from bench._report import load, requests_text, table
from bench._rig import (
    Rig,
    dingtalk_body,
    first_slot,
    open_rig,
    seed_caldav,
    seed_dingtalk,
    server_ms,
    vcalendar,
    vevent,
)
from bench._stats import delta, median
from bench._vdirsyncer import VdirPair, ensure_vdirsyncer, version
from syncd.config._models import DEFAULT_CONCURRENCY, DEFAULT_DINGTALK_QPS
from tests.fixtures.caldav_servers import (
    CalDAVServer,
    CalendarHandle,
    make_calendar,
    start_caldav_server,
)

DEFAULTS: dict[str, Any] = {
    "n": 1000,
    "baseline_n": 1000,
    "levels": [1, DEFAULT_CONCURRENCY],
    "servers": ["radicale", "xandikos"],
    "rounds": 3,
    "paced_n": 300,
    "api_latency_ms": 50.0,
    "directions": ["caldav", "dingtalk"],
    "latency_n": 0,  # events of the latency runs; 0: --paced-n
}
FAST_QPS = 10_000.0  # the most `dingtalk.qps` accepts: the pace never waits
OTHER_USER = "u-bob"  # the raw CreateEvent calls go to his calendar, untouched by syncd


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def _timed_reconcile(rig: Rig, *, full: bool) -> dict[str, Any]:
    d0, c0 = rig.dingtalk_requests(), rig.caldav_requests()
    started = time.perf_counter()
    report = await rig.reconcile(full=full)
    wall = time.perf_counter() - started
    if report.errors:
        raise RuntimeError(f"initial sync had errors: {report.errors[:3]}")
    return {
        "wall_s": wall,
        "created": report.counts.created,
        "written": report.counts.created + report.counts.updated + report.counts.deleted,
        "dingtalk": delta(rig.dingtalk_requests(), d0),
        "caldav": delta(rig.caldav_requests(), c0),
        "load1": _load(),
    }


async def _raw_puts(calendar: CalendarHandle, n: int, start: datetime) -> float:
    """Seconds ``n`` sequential create-PUTs take on one keep-alive connection."""
    headers = {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"}
    auth = aiohttp.BasicAuth(*calendar.auth)
    # UIDs unique to this run: Cyrus refuses (403) a UID another calendar of the user holds
    tag = uuid.uuid4().hex[:8]
    bodies = [
        vcalendar(vevent(i, start)).replace("UID:bench-", f"UID:raw-{tag}-").encode()
        for i in range(n)
    ]
    async with aiohttp.ClientSession(auth=auth) as session:
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            url = f"{calendar.url}raw-{i:05d}.ics"
            async with session.put(url, data=body, headers=headers) as response:
                if response.status not in (201, 204):
                    raise RuntimeError(f"raw PUT {url}: {response.status}")
        return time.perf_counter() - started


async def _raw_creates(rig: Rig, n: int, start: datetime) -> float:
    """Seconds ``n`` sequential CreateEvent calls take (u-bob's calendar, same sandbox)."""
    bodies = [dingtalk_body(i, start) for i in range(n)]
    started = time.perf_counter()
    for body in bodies:
        await rig.api.create(OTHER_USER, body)
    return time.perf_counter() - started


async def _to_caldav(dav: CalDAVServer, n: int, level: int, raw_first: bool) -> dict[str, Any]:
    """One round: raw PUTs into one empty calendar, syncd's copy into another."""
    async with open_rig(dav=dav, qps=FAST_QPS, concurrency=level) as rig:
        await seed_dingtalk(rig.api, n, first_slot())
        raw_cal = make_calendar(dav)
        raw = await _raw_puts(raw_cal, n, first_slot()) if raw_first else None
        first = await _timed_reconcile(rig, full=True)
        if raw is None:
            raw = await _raw_puts(raw_cal, n, first_slot())
        follow = await _timed_reconcile(rig, full=False)
    if first["created"] != n or follow["written"]:
        raise RuntimeError(f"initial sync created {first['created']}/{n}, then {follow}")
    return {"raw_s": raw, "first": first, "follow_up": follow}


async def _to_dingtalk(
    n: int, level: int, qps: float, raw_first: bool, latency_ms: float = 0.0
) -> dict[str, Any]:
    """One round: raw CreateEvents (u-bob), syncd's copy of N Radicale events (u-alice).

    ``latency_ms``: the sandbox answers every API call that much later (its ``latency_ms``
    fault), as DingTalk does across a real network; the raw calls wait the same.
    """
    async with open_rig(qps=qps, concurrency=level) as rig:
        seed_caldav(rig.calendar, n, first_slot())
        rig.sandbox.sandbox.set_faults(latency_ms=latency_ms)
        raw = await _raw_creates(rig, n, first_slot()) if raw_first else None
        first = await _timed_reconcile(rig, full=True)
        if raw is None:
            raw = await _raw_creates(rig, n, first_slot())
        follow = await _timed_reconcile(rig, full=False)
    if first["created"] != n or follow["written"]:
        raise RuntimeError(f"initial sync created {first['created']}/{n}, then {follow}")
    return {"raw_s": raw, "first": first, "follow_up": follow}


async def _rounds(opts: dict[str, Any], one: Any) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` × every level of ``one(level, raw_first)``; raw goes first every other time."""
    out: dict[str, list[dict[str, Any]]] = {str(level): [] for level in opts["levels"]}
    for r in range(opts["rounds"]):
        for k, level in enumerate(opts["levels"]):
            out[str(level)].append(await one(level, (r + k) % 2 == 0))
    return out


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 3 (syncd against raw sequential writes) for ``opts['n']`` events.

    ``directions``: ``caldav`` (DingTalk → each of ``servers``) and/or ``dingtalk``
    (Radicale → DingTalk, then the paced and the latency runs).
    """
    n, servers = opts["n"], opts.get("servers") or DEFAULTS["servers"]
    opts = {**DEFAULTS, **{k: v for k, v in opts.items() if v is not None}}
    result: dict[str, Any] = {"n": n, "levels": opts["levels"], "to_caldav": {}}
    if "caldav" in opts["directions"]:
        for name in servers:
            result["to_caldav"][name] = await _server_rounds(name, n, opts)
    if "dingtalk" in opts["directions"]:
        result.update(await _dingtalk_runs(n, opts))
    return result


async def _server_rounds(name: str, n: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Every round and level of DingTalk → ``name``, on one server started for them."""
    dav = start_caldav_server(name, authenticate=False)
    try:
        return await _rounds(opts, lambda level, rf: _to_caldav(dav, n, level, rf))
    finally:
        dav.stop()


async def _dingtalk_runs(n: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Radicale → DingTalk: unpaced rounds, one paced round, the latency rounds."""
    result: dict[str, Any] = {}
    result["to_dingtalk"] = await _rounds(
        opts, lambda level, rf: _to_dingtalk(n, level, FAST_QPS, rf)
    )
    paced = {**opts, "rounds": 1}
    if opts["paced_n"]:
        result["to_dingtalk_paced"] = {
            "n": opts["paced_n"],
            "qps": DEFAULT_DINGTALK_QPS,
            "runs": await _rounds(
                paced,
                lambda level, rf: _to_dingtalk(opts["paced_n"], level, DEFAULT_DINGTALK_QPS, rf),
            ),
        }
    latency = opts["api_latency_ms"]
    if latency:
        result["to_dingtalk_latency"] = {
            "n": opts["latency_n"] or opts["paced_n"],
            "latency_ms": latency,
            "runs": await _rounds(
                opts,
                lambda level, rf: _to_dingtalk(
                    opts["latency_n"] or opts["paced_n"], level, FAST_QPS, rf, latency
                ),
            ),
        }
    return result


def _baseline(n: int) -> dict[str, Any]:
    """vdirsyncer copies ``n`` events between two Radicale calendars (first sync)."""
    exe = ensure_vdirsyncer()
    dav = start_caldav_server("radicale", authenticate=False)
    try:
        source, target = make_calendar(dav), make_calendar(dav)
        seed_caldav(source, n, first_slot())
        pair = VdirPair(exe, dav.workdir / "vdirsyncer", source.url, target.url)
        pair.run("discover")
        count0 = len(dav.requests("/"))
        s0 = server_ms(dav, target.path)
        wall = pair.run("sync")
        target.settled_requests(timeout=2.0)
        methods: dict[str, int] = {}
        for method, _ in dav.requests("/")[count0:]:
            methods[method] = methods.get(method, 0) + 1
        puts = sum(1 for m, _ in dav.requests(target.path) if m == "PUT")
        target_ms = server_ms(dav, target.path) - s0
    finally:
        dav.stop()
    if puts != n:
        raise RuntimeError(f"vdirsyncer copied {puts} of {n} events")
    return {"n": n, "wall_s": wall, "caldav": methods, "target_server_ms": target_ms}


async def run_baseline(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 3's yardstick: vdirsyncer copies ``baseline_n`` (default ``n``) events."""
    n = opts.get("baseline_n") or opts["n"]
    return {"vdirsyncer_copy": _baseline(n), "vdirsyncer": version(ensure_vdirsyncer())}


def _per_event(counts: dict[str, int], n: int) -> str:
    return f"{sum(counts.values()) / n:.2f}" if n else "0"


def _rows(
    label: str, n: int, runs: dict[str, list[dict[str, Any]]], raw_label: str
) -> list[list[Any]]:
    """One row for raw (median over every round of every level), one per level."""
    raws = [r["raw_s"] for level in runs.values() for r in level]
    rows: list[list[Any]] = [
        [
            f"raw sequential {raw_label}",
            n,
            f"{median(raws):.1f} s",
            f"{n / median(raws):.1f}",
            "1.00×",
            "—",
            "—",
        ]
    ]
    for level, rounds in runs.items():
        walls = [r["first"]["wall_s"] for r in rounds]
        ratios = [r["raw_s"] / r["first"]["wall_s"] for r in rounds]
        first = rounds[0]["first"]
        loads = [r["first"]["load1"] for r in rounds]
        rows.append(
            [
                f"syncd {label}, concurrency {level}",
                n,
                f"{median(walls):.1f} s",
                f"{n / median(walls):.1f}",
                f"{median(ratios):.2f}× ({', '.join(f'{x:.2f}' for x in ratios)})",
                f"DingTalk {requests_text(first['dingtalk'])}; "
                f"CalDAV {requests_text(first['caldav'])}",
                f"{min(loads):.1f}–{max(loads):.1f}",
            ]
        )
    return rows


_HEADER = [
    "run",
    "events",
    "wall (median)",
    "events/s",
    "speed vs raw, same round (median; each)",
    "requests of one syncd run",
    "load (1 min)",
]


def render(result: dict[str, Any]) -> str:
    """Markdown: per direction (and server) raw vs syncd at each level; the paced runs."""
    n = result["n"]
    rows: list[list[Any]] = []
    for server, runs in result["to_caldav"].items():
        rows += _rows(f"DingTalk → {server}", n, runs, f"PUT to {server}")
    if "to_dingtalk" in result:
        rows += _rows("Radicale → DingTalk", n, result["to_dingtalk"], "CreateEvent to the sandbox")
    parts = [table(_HEADER, rows)] if rows else []
    if "to_dingtalk_paced" in result:
        parts.append(_paced_table(result["to_dingtalk_paced"]))
    slow = result.get("to_dingtalk_latency")
    if slow:
        label = f"Radicale → DingTalk, API answers {slow['latency_ms']:g} ms late"
        rows = _rows(label, slow["n"], slow["runs"], "CreateEvent, same latency")
        parts.append(table(_HEADER, rows))
    return "\n\n".join(parts)


def _paced_table(paced: dict[str, Any]) -> str:
    prow = []
    for level, (run,) in paced["runs"].items():
        first = run["first"]
        calls = sum(first["dingtalk"].values())
        prow.append(
            [
                f"concurrency {level}",
                paced["n"],
                f"{first['wall_s']:.1f} s",
                f"{paced['n'] / first['wall_s']:.1f}",
                f"{calls / first['wall_s']:.1f}",
                f"{paced['qps'] / 1.1:.1f}",
            ]
        )
    return table(
        [
            "Radicale → DingTalk at dingtalk.qps " + f"{paced['qps']:g}",
            "events",
            "wall",
            "events/s",
            "DingTalk calls/s",
            "pace limit (calls/s)",
        ],
        prow,
    )


def render_baseline(result: dict[str, Any]) -> str:
    """The vdirsyncer copy, and syncd's DingTalk → CalDAV rate against it (same N only)."""
    base = result["vdirsyncer_copy"]
    n, rate = base["n"], base["n"] / base["wall_s"]
    syncd = load("initial")
    ratio = "—"
    radicale = (syncd or {}).get("to_caldav", {}).get("radicale") if syncd else None
    if syncd and radicale and syncd.get("n") == n:
        level = str(max(int(k) for k in radicale))
        mine = n / median([r["first"]["wall_s"] for r in radicale[level]])
        ratio = (
            f"syncd DingTalk → Radicale (concurrency {level}) {mine:.1f} events/s "
            f"= {mine / rate:.2f}× vdirsyncer"
        )
    row = [
        f"{result['vdirsyncer']}: CalDAV → CalDAV (first sync)",
        n,
        f"{base['wall_s']:.1f} s",
        f"{rate:.1f}",
        requests_text(base["caldav"]),
        _per_event(base["caldav"], n),
        f"{base['target_server_ms'] / 1000:.1f} s",
        ratio,
    ]
    header = [
        "run",
        "events",
        "wall",
        "events/s",
        "CalDAV requests",
        "per event",
        "Radicale answer time (target)",
        "vs syncd (same N, this run)",
    ]
    return table(header, [row])
