"""Benchmark 3 — initial sync throughput, both directions, with vdirsyncer as a yardstick.

* DingTalk → CalDAV: N events created in u-alice's sandbox calendar, an empty Radicale
  calendar; one full reconcile copies them (N PUTs), then the follow-up run that reads our
  own writes back (echo suppression: it must write nothing).
* CalDAV → DingTalk: N events in Radicale (one collection PUT), an empty DingTalk
  calendar; one full reconcile creates them in the sandbox, then the follow-up run.
* Baseline (``initial-vdirsyncer``, a separate name to keep each run short): vdirsyncer 0.21
  copying ``baseline_n`` events from one Radicale calendar to an empty one (its first
  ``sync`` after ``discover``): the same Radicale write path, so the events/second ratio
  shows what syncd adds on top of the server's PUT cost.

Per direction: wall time, events/second, requests per event on each side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Timezone

from bench._report import load, requests_text, table
from bench._rig import Rig, first_slot, open_rig, seed_caldav, seed_dingtalk, server_ms
from bench._stats import delta, median
from bench._vdirsyncer import VdirPair, ensure_vdirsyncer, version
from syncd.translate import event_from_ical, event_to_ical
from syncd.worker.wiring import translation_context
from tests.fixtures.caldav_servers import make_calendar, start_caldav_server
from tests.fixtures.spine import REF

DEFAULTS = {"n": 1000, "baseline_n": 1000}


async def _timed_reconcile(rig: Rig, *, full: bool) -> dict[str, Any]:
    d0, c0, s0 = rig.dingtalk_requests(), rig.caldav_requests(), rig.caldav_server_ms()
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
        "server_ms": rig.caldav_server_ms() - s0,
    }


async def _direction(n: int, to_caldav: bool) -> dict[str, Any]:
    async with open_rig() as rig:
        if to_caldav:
            await seed_dingtalk(rig.api, n, first_slot())
        else:
            seed_caldav(rig.calendar, n, first_slot())
        first = await _timed_reconcile(rig, full=True)
        follow = await _timed_reconcile(rig, full=False)
        costs = await _translation_costs(rig) if to_caldav else {}
    if first["created"] != n or follow["written"]:
        raise RuntimeError(f"initial sync created {first['created']}/{n}, then {follow}")
    return {"n": n, "first": first, "follow_up": follow, "translation_ms": costs}


async def _translation_costs(rig: Rig, rounds: int = 30) -> dict[str, Any]:
    """Median ms of ``event_to_ical`` on a synced event, of parsing it back, and of the
    VTIMEZONE generation (``icalendar.Timezone.from_tzinfo``) that writing it includes."""
    pairs = await rig.ctx.store.load_pairs(REF)
    event = next(p.base for p in pairs.values() if p.base is not None)
    tenant = rig.config.tenant(REF.tenant)
    ctx = translation_context(tenant, tenant.binding(REF.binding))
    text = event_to_ical(event, ctx)
    zone = ZoneInfo(event.timezone or "UTC")

    calls: dict[str, Callable[[], object]] = {
        "event_to_ical": lambda: event_to_ical(event, ctx),
        "event_from_ical": lambda: event_from_ical(text, ctx),
        "vtimezone_from_tzinfo": lambda: Timezone.from_tzinfo(zone),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):  # interleaved, so load changes hit all three alike
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    out: dict[str, Any] = {k: round(median(v) * 1000, 2) for k, v in samples.items()}
    return {**out, "zone": str(zone)}


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


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 3 (syncd) for ``opts['n']`` events each way."""
    n = opts["n"]
    return {
        "to_caldav": await _direction(n, to_caldav=True),
        "to_dingtalk": await _direction(n, to_caldav=False),
    }


async def run_baseline(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 3's yardstick: vdirsyncer copies ``baseline_n`` (default ``n``) events."""
    n = opts.get("baseline_n") or opts["n"]
    return {"vdirsyncer_copy": _baseline(n), "vdirsyncer": version(ensure_vdirsyncer())}


def _per_event(counts: dict[str, int], n: int) -> str:
    return f"{sum(counts.values()) / n:.2f}" if n else "0"


def render(result: dict[str, Any]) -> str:
    """Markdown table: one row per direction, the follow-up runs, and the baseline."""
    rows = []
    for key, label in (("to_caldav", "DingTalk → CalDAV"), ("to_dingtalk", "CalDAV → DingTalk")):
        r = result[key]
        n, first, follow = r["n"], r["first"], r["follow_up"]
        rows.append(
            [
                f"syncd {label}",
                n,
                f"{first['wall_s']:.1f} s",
                f"{n / first['wall_s']:.1f}",
                requests_text(first["dingtalk"]),
                _per_event(first["dingtalk"], n),
                requests_text(first["caldav"]),
                _per_event(first["caldav"], n),
            ]
        )
        rows.append(
            [
                f"syncd {label}: follow-up run",
                n,
                f"{follow['wall_s']:.2f} s",
                "—",
                requests_text(follow["dingtalk"]),
                "—",
                requests_text(follow["caldav"]),
                "—",
            ]
        )
    header = [
        "run",
        "events",
        "wall",
        "events/s",
        "DingTalk requests",
        "per event",
        "CalDAV requests",
        "per event",
    ]
    costs = result["to_caldav"].get("translation_ms") or {}
    note = ""
    if costs:
        note = (
            f"\n\nClient CPU per CalDAV write (medians of 30, interleaved): event_to_ical "
            f"{costs['event_to_ical']} ms; generating the VTIMEZONE for {costs['zone']} alone "
            f"(icalendar Timezone.from_tzinfo, which add_missing_timezones calls) "
            f"{costs['vtimezone_from_tzinfo']} ms; event_from_ical {costs['event_from_ical']} ms."
        )
    return table(header, rows) + note


def render_baseline(result: dict[str, Any]) -> str:
    """The vdirsyncer copy, and syncd's DingTalk → CalDAV rate against it (same N only)."""
    base = result["vdirsyncer_copy"]
    n, rate = base["n"], base["n"] / base["wall_s"]
    syncd = load("initial")
    ratio = "—"
    if syncd and syncd["to_caldav"]["n"] == n:
        mine = n / syncd["to_caldav"]["first"]["wall_s"]
        ratio = f"syncd DingTalk → CalDAV {mine:.1f} events/s = {mine / rate:.2f}× vdirsyncer"
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
