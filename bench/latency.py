"""Benchmark 2 — change propagation latency through the real webhook and a running worker.

One process runs what ``syncd run`` runs — the webhook (aiohttp, on a free port, registered
as the sandbox app's callback URL) and an arq worker started with ``create_worker(config)``
and ``async_run()`` (not burst mode; poll cron on) — next to the sandbox, Redis and Radicale.
The binding's ``poll_interval`` is 1 s.

* DingTalk → CalDAV: ``changes`` events created, then each edited, through the sandbox
  API; the clock runs from just before the API call until a GET of the item on Radicale
  shows it (polled every 10 ms). Run with the worker as shipped, or once per arq
  ``poll_delay`` in ``poll_delays`` (``--poll-delays 0.5,0.05``: how much of the latency
  is the worker's queue polling; 0.5 s is arq's own default).
* CalDAV → DingTalk: ``changes`` edits PUT to Radicale by a client; the clock runs until
  the sandbox holds the new summary. No push exists here: the worker's poll cron finds it.

Before each change the benchmark waits until syncd has been idle for 0.6 s (no callback
pending, no job queued or running), then a seeded random 0.2–0.7 s (CalDAV edits: 0–5 s,
one poll-cron tick), so one change's
reconcile (or the echo of its write) never picks up the next change early and changes fall
at random phases of the worker's polling. vdirsyncer has no push: its latency is its
timer interval plus one run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

from aiohttp import web
from arq.constants import default_queue_name, in_progress_key_prefix

from bench._report import load, requests_text, table
from bench._rig import USER, Rig, dingtalk_body, first_slot, open_rig, vcalendar, vevent
from bench._stats import delta, ms, summary
from syncd.adapters.caldav.client import CalDAVClient
from syncd.translate import uid_for_dingtalk_id
from syncd.webhook.app import create_app
from syncd.worker.settings import POLL_TICK_SECONDS, create_worker, worker_settings
from syncd_lab.stack.ports import free_port

DEFAULTS: dict[str, Any] = {"changes": 20, "poll_delays": []}  # []: as shipped
POLL_INTERVAL_S = 1.0
WATCH_EVERY_S = 0.01
TIMEOUT_S = 30.0
QUIET_S = 0.6
RECONCILE_JOB = b":reconcile:"  # in every reconcile job id (syncd.store.keys)
VDIRSYNCER_TIMER_S = 15 * 60
IDLE_WINDOW_S = 15.0


@asynccontextmanager
async def running_syncd(rig: Rig, poll_delay: float | None) -> AsyncIterator[None]:
    """The webhook and one arq worker serving ``rig``'s config in this event loop.

    ``poll_delay`` overrides the worker's queue polling interval (None: as shipped).
    """
    runner = web.AppRunner(create_app(rig.config, rig.pool), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rig.sandbox.sandbox.set_callback(rig.sandbox.app_key, f"http://127.0.0.1:{port}/callbacks/acme")
    overrides: dict[str, Any] = {} if poll_delay is None else {"poll_delay": poll_delay}
    worker = create_worker(rig.config, **overrides)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        rig.sandbox.sandbox.set_callback(rig.sandbox.app_key, None)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await worker.close()
        await runner.cleanup()


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until ``check()`` is true (polled every 10 ms); raises after 30 s."""
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > TIMEOUT_S:
            raise TimeoutError(f"{what} not visible after {TIMEOUT_S} s")
        await asyncio.sleep(WATCH_EVERY_S)
    return time.perf_counter() - started


class DavWatch:
    """GETs one item on Radicale until its text holds an expected summary."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.hrefs = CalDAVClient(rig.calendar.url, None, None)

    async def close(self) -> None:
        """Close the unused client session."""
        await self.hrefs.close()

    def url_of(self, event_id: str) -> str:
        """Where syncd puts the CalDAV copy of DingTalk event ``event_id``."""
        href = self.hrefs.href_for_uid(uid_for_dingtalk_id(event_id))
        return self.rig.calendar.base_url + href

    async def shows(self, url: str, summary: str) -> bool:
        """True once the item at ``url`` exists with ``SUMMARY:summary``."""
        async with self.rig.api.s.get(url) as resp:
            return resp.status == 200 and f"SUMMARY:{summary}\r\n" in await resp.text()


async def _busy(rig: Rig) -> bool:
    """True while a callback is being pushed or a reconcile job is queued or running.

    (Cron jobs are left out: arq queues them ahead of time and keeps their in-progress
    key for a while.)
    """
    if rig.sandbox.sandbox.stats()["callbacks"]["pending"]:
        return True
    queued = await rig.pool.zrange(default_queue_name, 0, -1)
    running = await rig.pool.keys(in_progress_key_prefix + "*")
    return any(RECONCILE_JOB in key for key in (*queued, *running))


async def _pause(rig: Rig, rng: random.Random, spread: tuple[float, float] = (0.2, 0.7)) -> None:
    """Wait until syncd has been idle for 0.6 s (longer than arq's poll), then a random
    ``spread`` (default 0.2–0.7 s) more.

    Each change is then measured on its own: a reconcile still running for the previous
    change (the echo of our own write, say) cannot pick the next change up early.
    """
    deadline = time.monotonic() + TIMEOUT_S
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S:
        if time.monotonic() > deadline:
            raise TimeoutError("syncd did not go idle")
        if await _busy(rig):
            quiet_since = time.monotonic()
        await asyncio.sleep(WATCH_EVERY_S * 5)
    await asyncio.sleep(rng.uniform(*spread))


async def dingtalk_to_caldav(rig: Rig, changes: int, rng: random.Random) -> dict[str, Any]:
    """Latencies of ``changes`` creates, then as many edits, made in DingTalk."""
    watch, start = DavWatch(rig), first_slot()
    created: list[tuple[str, str, float]] = []
    try:
        for i in range(changes):
            await _pause(rig, rng)
            summary_ = f"Latency create {i} {rng.random():.6f}"
            t0 = time.perf_counter()
            ev = await rig.api.create(USER, dingtalk_body(i, start, summary_))
            url = watch.url_of(ev["id"])
            await _until(partial(watch.shows, url, summary_), summary_)
            created.append((ev["id"], url, time.perf_counter() - t0))
        edits = []
        for i, (event_id, url, _) in enumerate(created):
            await _pause(rig, rng)
            summary_ = f"Latency edit {i} {rng.random():.6f}"
            t0 = time.perf_counter()
            path = rig.api.events(USER, f"/{event_id}")
            body = {"id": event_id, "summary": summary_}
            status, _ = await rig.api.call("PUT", path, json=body)
            if status != 200:
                raise RuntimeError(f"edit of {event_id} answered {status}")
            await _until(partial(watch.shows, url, summary_), summary_)
            edits.append(time.perf_counter() - t0)
    finally:
        await watch.close()
    creates = [c[2] for c in created]
    return {"create": summary(creates), "edit": summary(edits), "all": summary(creates + edits)}


async def caldav_to_dingtalk(rig: Rig, changes: int, rng: random.Random) -> dict[str, Any]:
    """Latencies of ``changes`` edits PUT to Radicale, until the sandbox holds them."""
    url = rig.calendar.url + "latency-caldav.ics"
    headers = {"Content-Type": "text/calendar; charset=utf-8"}

    def in_dingtalk(summary_: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            events = rig.sandbox.sandbox.events_of(USER)
            return any(e.get("summary") == summary_ for e in events)

        return check

    async def put(summary_: str) -> None:
        text = vcalendar(vevent(500, first_slot(), summary_))
        async with rig.api.s.put(url, data=text.encode(), headers=headers) as resp:
            if resp.status not in (201, 204):
                raise RuntimeError(f"PUT {url} answered {resp.status}")

    await put("Latency caldav warm-up")
    await _until(in_dingtalk("Latency caldav warm-up"), "warm-up")
    out = []
    for i in range(changes):
        await _pause(rig, rng, (0.0, POLL_TICK_SECONDS))  # a random phase of the poll cron
        summary_ = f"Latency caldav edit {i} {rng.random():.6f}"
        t0 = time.perf_counter()
        await put(summary_)
        await _until(in_dingtalk(summary_), summary_)
        out.append(time.perf_counter() - t0)
    return {"edit": summary(out)}


async def _warm_up(rig: Rig) -> None:
    """One create through the whole path, not measured (connections, tokens, imports)."""
    watch = DavWatch(rig)
    try:
        ev = await rig.api.create(USER, dingtalk_body(900, first_slot(), "Latency warm-up"))
        url = watch.url_of(ev["id"])
        await _until(partial(watch.shows, url, "Latency warm-up"), "warm-up")
    finally:
        await watch.close()


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark 2: DingTalk → CalDAV per poll delay, then CalDAV → DingTalk."""
    changes, rng = opts["changes"], random.Random(20261123)
    to_caldav: dict[str, Any] = {}
    to_dingtalk: dict[str, Any] = {}
    idle: dict[str, Any] = {}
    shipped: float | None = None
    for poll_delay in opts.get("poll_delays") or [None]:
        async with (
            open_rig(poll_interval=POLL_INTERVAL_S) as rig,
            running_syncd(rig, poll_delay),
        ):
            await _warm_up(rig)
            shipped = float(worker_settings(rig.config)["poll_delay"])
            effective = shipped if poll_delay is None else poll_delay
            to_caldav[f"{effective:g}"] = await dingtalk_to_caldav(rig, changes, rng)
            if not to_dingtalk:
                to_dingtalk = await caldav_to_dingtalk(rig, changes, rng)
                idle = await idle_window(rig, rng)
    idle_result = load("idle")
    vdir_run = None
    if idle_result:
        largest = max(idle_result["sizes"], key=lambda s: s["n"])
        vdir_run = largest["vdirsyncer_idle"]["wall"]["median"]
    return {
        "changes": changes,
        "poll_interval_s": POLL_INTERVAL_S,
        "poll_tick_s": POLL_TICK_SECONDS,
        "shipped_poll_delay_s": shipped,
        "dingtalk_to_caldav": to_caldav,
        "caldav_to_dingtalk": to_dingtalk,
        "vdirsyncer_timer_s": VDIRSYNCER_TIMER_S,
        "vdirsyncer_run_s": vdir_run,
        "idle_window": idle,
    }


async def idle_window(rig: Rig, rng: random.Random) -> dict[str, Any]:
    """What the running worker asks of both servers while nothing changes for
    ``IDLE_WINDOW_S`` seconds (poll cron only)."""
    await _pause(rig, rng)
    d0, c0 = rig.dingtalk_requests(), rig.caldav_requests()
    await asyncio.sleep(IDLE_WINDOW_S)
    await _pause(rig, rng)  # let a poll that started inside the window finish
    return {
        "seconds": IDLE_WINDOW_S,
        "dingtalk": delta(rig.dingtalk_requests(), d0),
        "caldav": delta(rig.caldav_requests(), c0),
    }


def render(result: dict[str, Any]) -> str:
    """Markdown table of the latencies and the vdirsyncer comparison."""
    rows = []
    for delay, series in result["dingtalk_to_caldav"].items():
        shipped = result.get("shipped_poll_delay_s")
        note = " (as shipped)" if shipped is not None and float(delay) == shipped else ""
        for kind in ("create", "edit", "all"):
            s = series[kind]
            rows.append(
                [
                    f"DingTalk {kind} → CalDAV, worker poll_delay {delay} s{note}",
                    s["n"],
                    ms(s["median"]),
                    ms(s["p95"]),
                    ms(s["max"]),
                ]
            )
    s = result["caldav_to_dingtalk"]["edit"]
    rows.append(
        [
            f"CalDAV edit → DingTalk, poll_interval {result['poll_interval_s']:g} s "
            f"(cron tick {result['poll_tick_s']} s)",
            s["n"],
            ms(s["median"]),
            ms(s["p95"]),
            ms(s["max"]),
        ]
    )
    run_s = result.get("vdirsyncer_run_s")
    timer = result["vdirsyncer_timer_s"]
    if run_s:
        rows.append(
            [
                "vdirsyncer (no push; 15 min timer + one run)",
                "—",
                f"{timer / 2 / 60:.1f} min + {ms(run_s)}",
                f"{timer * 0.95 / 60:.2f} min + {ms(run_s)}",
                f"{timer / 60:.0f} min + {ms(run_s)}",
            ]
        )
    out = table(["change", "count", "median", "p95", "max"], rows)
    idle = result.get("idle_window")
    if idle:
        out += (
            f"\n\nWhile nothing changed for {idle['seconds']:g} s the running worker sent "
            f"DingTalk {requests_text(idle['dingtalk'])} and CalDAV "
            f"{requests_text(idle['caldav'])} (poll cron every {result['poll_tick_s']} s)."
        )
    return out
