"""Scale: 3 worker processes and 1 web process on one Redis, 100 tenants x 5 bindings.

Everything is real and on loopback: ``syncd web`` and three ``syncd worker`` processes
(the installed console script), one ``redis-server``, one Radicale, and 100 DingTalk
sandboxes (one fake organisation per tenant, each with its own app, callback token and
AES key, served by this test's event loop). Each sandbox pushes signed, encrypted
``calendar_event_change`` callbacks to ``syncd web`` as DingTalk does.

CalDAV set-up: one Radicale holding the 500 calendars. They are created by writing
Radicale's own collection folders (``.Radicale.props`` copied from a calendar made by a
real MKCALENDAR) rather than by 500 MKCALENDAR requests, which would take most of the
time budget; Radicale serves them like any other. Polling is set to 1 h: each binding's
first poll comes when the workers start (500 initial full reconciles, racing the first
changes), and after that the work is callback-driven.

While changes arrive (creates and renames in random users' DingTalk calendars, paced
over ``SPREAD_S``) the workers reconcile. At the end:

- every change landed exactly once: each Radicale calendar holds exactly the final
  summaries of its user's DingTalk events (read from Radicale's storage), and no
  DingTalk calendar holds anything the test did not create (no echoes);
- no binding was reconciled by two workers at once: each worker's ``reconciled`` log
  lines give a run's interval (end timestamp minus duration); per binding, the runs of
  all workers never overlap;
- the work spread over the workers: the split of runs is printed and each worker did
  at least a tenth of them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import secrets
import shutil
import signal
import string
import time
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd_lab.stack.caldav_base import CalDAVServer
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import make_calendar, start_caldav_server
from tests.fixtures.processes import SyncdProcess, start_syncd, upcoming_event
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import (
    SandboxApi,
    SandboxHandle,
    sandbox_token,
    seed_from_data,
    start_sandbox,
)
from tests.fixtures.spine import caldav_yaml

TENANTS = 100
BINDINGS = 5  # per tenant: one DingTalk user each
WORKERS = 3
CREATES = 300
RENAMES = 100
SPREAD_S = 15.0  # changes are sent evenly over this time
SETTLE_S = 60.0  # after the last change, everything must have landed within this
SUMMARY = re.compile(r"^SUMMARY:(.*)$", re.MULTILINE)


def tenant_id(t: int) -> str:
    return f"t{t:03d}"


def user_id(t: int, k: int) -> str:
    return f"u-{tenant_id(t)}-{k}"


def _aes_key(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(43))


@dataclass
class Org:
    """One tenant: its sandbox, API client, and the events the test made per user."""

    tenant: str
    handle: SandboxHandle
    api: SandboxApi
    token: str
    aes_key: str


def _seed(t: int, callback_url: str, token: str, aes_key: str) -> Any:
    return seed_from_data(
        {
            "apps": [
                {
                    "app_key": f"ding{tenant_id(t)}",
                    "app_secret": f"secret-{tenant_id(t)}",
                    "corp_id": f"corp{tenant_id(t)}",
                    "callback": {"url": callback_url, "token": token, "aes_key": aes_key},
                }
            ],
            "users": [
                {
                    "union_id": user_id(t, k),
                    "name": f"User {k}",
                    "email": f"{user_id(t, k)}@x.example",
                }
                for k in range(BINDINGS)
            ],
        }
    )


def _tenant_yaml(org: Org, t: int, dav: CalDAVServer) -> str:
    auth = (dav.username, dav.password)
    lines = [
        f"id: {org.tenant}",
        "dingtalk:",
        f"  api_base: {org.handle.url}",
        f"  app_key: ding{org.tenant}",
        f"  app_secret: secret-{org.tenant}",
        f"  callback: {{token: {org.token}, aes_key: {org.aes_key}}}",
        "directory:",
        *(
            f"  - {{union_id: {user_id(t, k)}, email: {user_id(t, k)}@x.example}}"
            for k in range(BINDINGS)
        ),
        "bindings:",
    ]
    for k in range(BINDINGS):
        url = f"{dav.calendar_home}{org.tenant}-b{k}/"
        lines += [
            f"  - id: b{k}",
            f"    dingtalk_user: {user_id(t, k)}",
            f"    caldav: {caldav_yaml(url, auth)}",
            "    poll_interval: 1h",
        ]
    return "\n".join(lines) + "\n"


def _make_calendars(dav: CalDAVServer) -> Path:
    """500 calendar collections in Radicale's storage, shaped like one MKCALENDAR made."""
    model = make_calendar(dav, "model")
    home = dav.workdir / "storage" / "collection-root" / dav.username
    props = (home / "model" / ".Radicale.props").read_text()
    for t in range(TENANTS):
        for k in range(BINDINGS):
            folder = home / f"{tenant_id(t)}-b{k}"
            folder.mkdir()
            (folder / ".Radicale.props").write_text(props)
    assert model.url.endswith("/model/")
    return home


def _stored_summaries(home: Path, t: int, k: int) -> Counter[str]:
    """The SUMMARY of every item Radicale stores in the binding's calendar."""
    found: Counter[str] = Counter()
    for item in (home / f"{tenant_id(t)}-b{k}").glob("*.ics"):
        found.update(s.strip() for s in SUMMARY.findall(item.read_text()))
    return found


async def _ready(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{url} not ready within {within}s"
            await asyncio.sleep(0.2)


async def _send_changes(
    orgs: list[Org], rng: random.Random
) -> dict[tuple[int, int], dict[str, str]]:
    """Creates and renames in random users' calendars, evenly over SPREAD_S; returns the
    final summary of every event by binding ``(t, k)`` and event id."""
    expected: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    made: list[tuple[int, int, str]] = []
    kinds = ["create"] * CREATES + ["rename"] * RENAMES
    rng.shuffle(kinds)
    started = time.monotonic()
    for n, kind in enumerate(kinds):
        await asyncio.sleep(max(0.0, started + n * SPREAD_S / len(kinds) - time.monotonic()))
        if kind == "rename" and made:  # (a rename before any create is a create)
            t, k, event_id = rng.choice(made)
            summary = f"{expected[t, k][event_id]} v{n}"
            status, data = await orgs[t].api.call(
                "PUT",
                orgs[t].api.events(user_id(t, k), f"/{event_id}"),
                json={"id": event_id, "summary": summary},
            )
            assert status == 200, data
            expected[t, k][event_id] = summary
            continue
        t, k = rng.randrange(TENANTS), rng.randrange(BINDINGS)
        summary = f"scale {n:03d} {tenant_id(t)}-b{k}"
        created = await orgs[t].api.create(user_id(t, k), upcoming_event(summary, n % 50))
        made.append((t, k, created["id"]))
        expected[t, k][created["id"]] = summary
    return expected


def _runs(worker: SyncdProcess) -> list[tuple[str, float, float]]:
    """``(binding, start, end)`` of each reconcile run the worker logged."""
    runs = []
    for entry in worker.events():
        if entry.get("event") == "reconciled":
            end = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))
            finish = end.timestamp()
            runs.append((str(entry["binding"]), finish - float(entry["duration"]), finish))
    return runs


def _overlaps(runs_by_worker: dict[int, list[tuple[str, float, float]]]) -> list[str]:
    """Runs of one binding by two workers whose intervals intersect."""
    per_binding: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for w, runs in runs_by_worker.items():
        for binding, start, end in runs:
            per_binding[binding].append((start, end, w))
    found = []
    for binding, runs in per_binding.items():
        runs.sort()
        for (s1, e1, w1), (s2, e2, w2) in itertools.pairwise(runs):
            if w1 != w2 and s2 < e1:
                found.append(
                    f"{binding}: worker {w1} [{s1:.3f}, {e1:.3f}] and {w2} [{s2:.3f}, {e2:.3f}]"
                )
    return found


async def _start_orgs(stack: AsyncExitStack, web_port: int, rng: random.Random) -> list[Org]:
    """One sandbox per tenant, its callback pointing at ``syncd web``, and an API client."""
    http = await stack.enter_async_context(aiohttp.ClientSession())
    orgs = []
    for t in range(TENANTS):
        token, aes_key = secrets.token_hex(8), _aes_key(rng)
        url = f"http://127.0.0.1:{web_port}/callbacks/{tenant_id(t)}"
        handle = await stack.enter_async_context(
            start_sandbox(_seed(t, url, token, aes_key), callback_timeout=1.5)
        )
        handle.app_key, handle.app_secret = f"ding{tenant_id(t)}", f"secret-{tenant_id(t)}"
        api = SandboxApi(handle, http, await sandbox_token(handle))
        orgs.append(Org(tenant_id(t), handle, api, token, aes_key))
    return orgs


def _write_config(root: Path, orgs: list[Org], dav: CalDAVServer, redis_url: str) -> Path:
    (root / "tenants").mkdir(parents=True)
    settings = [f"redis_url: {redis_url}", "log: {format: json, level: info}"]
    (root / "syncd.yaml").write_text("\n".join([*settings, "shutdown_timeout: 10s"]) + "\n")
    for t, org in enumerate(orgs):
        (root / "tenants" / f"{org.tenant}.yaml").write_text(_tenant_yaml(org, t, dav))
    return root


async def _settle(
    home: Path, expected: dict[tuple[int, int], dict[str, str]]
) -> dict[tuple[int, int], dict[str, str]]:
    """Wait until every binding's calendar holds exactly its expected summaries; what is
    still not so after SETTLE_S."""
    deadline = time.monotonic() + SETTLE_S
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        pending = {
            key: events
            for key, events in pending.items()
            if _stored_summaries(home, *key) != Counter(events.values())
        }
    return pending


async def _dingtalk_extra(
    orgs: list[Org], expected: dict[tuple[int, int], dict[str, str]]
) -> dict[str, dict[str, list[str]]]:
    """Per user whose DingTalk calendar is not exactly the events the test made: the
    events it made that are missing, and those it did not make (echoes copied back)."""
    wrong = {}
    for (t, k), events in expected.items():
        listed, _ = await orgs[t].api.list_all(user_id(t, k))
        ids = Counter(e["id"] for e in listed if e.get("status") != "cancelled")
        if ids != Counter(events.keys()):
            wrong[user_id(t, k)] = {
                "missing": sorted(set(events) - set(ids)),
                "extra": sorted(set(ids) - set(events)),
                "listed": [f"{e['id']} {e.get('status')} {e.get('summary')}" for e in listed],
            }
    return wrong


async def _start_processes(root: Path, web_port: int, log_dir: Path) -> list[SyncdProcess]:
    """``syncd web`` and WORKERS ``syncd worker``, started and ready (web first)."""
    listen = f"127.0.0.1:{web_port}"
    web = await start_syncd("web", root, "--listen", listen, log_dir=log_dir)
    workers = [await start_syncd("worker", root, log_dir=log_dir) for _ in range(WORKERS)]
    await _ready(f"http://{listen}/readyz", within=60)
    for worker in workers:
        await worker.wait_logged("worker_started", within=60)
    return [web, *workers]


def test_overlap_check_finds_concurrent_runs() -> None:
    """The overlap check flags two workers' runs of one binding that intersect, and only
    those (back-to-back runs, or one worker's consecutive runs, are fine)."""
    runs = {
        1: [("t000/b0", 10.0, 11.0), ("t000/b1", 10.0, 12.0), ("t000/b2", 1.0, 2.0)],
        2: [("t000/b0", 11.0, 12.0), ("t000/b1", 11.5, 11.6), ("t000/b2", 1.5, 1.6)],
    }
    assert len(_overlaps(runs)) == 2
    assert _overlaps({1: [("t/b", 1.0, 3.0), ("t/b", 2.0, 4.0)]}) == []


@pytest.mark.slow
@pytest.mark.usefixtures("syncd_reaper")
async def test_three_workers_one_web_100_tenants(tmp_path: Path) -> None:
    """100 tenants x 5 bindings, 400 changes over 15 s through signed callbacks: every
    change lands once, no binding is reconciled by two workers at once, and the work is
    split over the three workers (printed)."""
    rng = random.Random(20261203)
    began = time.monotonic()
    dav = start_caldav_server("radicale")
    redis = start_redis()
    try:
        home = _make_calendars(dav)
        async with AsyncExitStack() as stack:
            web_port = free_port()
            orgs = await _start_orgs(stack, web_port, rng)
            root = _write_config(tmp_path / "config", orgs, dav, redis.url)
            processes = await _start_processes(root, web_port, tmp_path)
            set_up = time.monotonic() - began

            changes_at = time.monotonic()
            expected = await _send_changes(orgs, rng)
            sent_s = time.monotonic() - changes_at
            for org in orgs:  # every push answered (DingTalk would retry a failed one)
                await org.handle.sandbox.drain()
            pending = await _settle(home, expected)
            settled_s = time.monotonic() - changes_at - sent_s

            callbacks = sum(
                (Counter(o.handle.sandbox.stats()["callbacks"]) for o in orgs), Counter()
            )
            dingtalk_extra = await _dingtalk_extra(orgs, expected)
            leftover = {f"{tenant_id(t)}-b{k}": _stored_summaries(home, t, k) for t, k in pending}
            for process in processes:
                process.send(signal.SIGTERM)
            for process in processes:
                await process.exited(within=30)
    finally:
        dav.remove()
        redis.stop()
        shutil.rmtree(redis.workdir, ignore_errors=True)

    runs = {w: _runs(worker) for w, worker in enumerate(processes[1:], 1)}
    split = {w: len(r) for w, r in runs.items()}
    total = sum(split.values())
    print(
        f"\nscale: {TENANTS} tenants x {BINDINGS} bindings, {CREATES} creates + {RENAMES} renames"
        f" over {sent_s:.1f} s to {len(expected)} bindings; set-up {set_up:.1f} s,"
        f" settled {settled_s:.1f} s after the last change; callbacks {dict(callbacks)};"
        f" reconcile runs per worker {split} (total {total},"
        f" {', '.join(f'{100 * n / max(total, 1):.0f}%' for n in split.values())})"
    )
    assert not pending, leftover
    assert not dingtalk_extra, dingtalk_extra
    # Each change was pushed: acknowledged, or given up after the sandbox's retries when an
    # overloaded machine kept the webhook from answering within DingTalk's 1.5 s (DingTalk
    # then keeps it for failedResults); either way it landed (asserted above).
    assert callbacks["sent"] + callbacks["failed"] == CREATES + RENAMES, callbacks
    assert not _overlaps(runs)
    assert all(n >= total / 10 for n in split.values()), split
    for process in processes:
        for line in process.text().splitlines():
            assert json.loads(line)["level"] != "error", line
