"""Tenant isolation: one tenant's callbacks and work never reach another tenant's state.

Two tenants with their own DingTalk apps, callback keys, CalDAV calendars and bindings
share one Redis, one webhook and one worker pool. Every Redis command is captured with
``MONITOR`` while one tenant's work runs (a webhook push, a real arq reconcile); the keys
each command touched (``COMMAND GETKEYS``, also for the commands inside Lua scripts) must
all lie in that tenant's namespace: ``syncd:<tenant>:…``, the keys of its own DingTalk
app (request pace, token cache), and arq's entries of its own job ids.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aredis
from aiohttp import web
from arq.connections import create_pool
from redis.exceptions import ResponseError

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.webhook.app import create_app as webhook_app
from syncd.worker.settings import create_worker
from syncd_lab.sandbox.app import SANDBOX_KEY, create_app
from syncd_lab.sandbox.seed import seed_from_data
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import (
    PASSWORD,
    USERNAME,
    CalDAVServer,
    CalendarHandle,
    make_calendar,
)
from tests.fixtures.sandbox import AES_KEY, APP_KEY, CALLBACK_TOKEN, SandboxHandle
from tests.fixtures.spine import timed_event
from tests.fixtures.webhook import (
    GLOBEX_AES,
    GLOBEX_TOKEN,
    Hook,
    change_push,
    hook,
    sealed_push,
)

__all__ = ["hook"]  # the webhook fixture of the integration tests (acme and globex)

_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class TenantSpec:
    """One tenant of the test: its app and callback keys, its user and binding."""

    id: str
    app_key: str
    app_secret: str
    token: str
    aes_key: str
    user: str
    binding: str

    @property
    def ref(self) -> BindingRef:
        return BindingRef(self.id, self.binding)


ACME = TenantSpec(
    "acme",
    "dingacme",
    "acme-app-secret",
    "acme-cb-token",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "u-alice",
    "alice-work",
)
GLOBEX = TenantSpec(
    "globex",
    "dingglobex",
    "globex-app-secret",
    "globex-cb-token",
    "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
    "u-bob",
    "bob-work",
)
TENANTS = (ACME, GLOBEX)


def owned_by(key: str, t: TenantSpec) -> bool:
    """Whether ``key`` belongs to tenant ``t`` (or to arq's shared queue bookkeeping)."""
    return (
        key.startswith(f"syncd:{t.id}:")
        or key
        in {
            f"syncd:@dingtalk:{t.app_key}:rate",
            f"syncd:@dingtalk:{t.app_key}:token",
            f"syncd:@dingtalk:{t.app_key}:token_lock",
            "arq:queue",  # arq's shared bookkeeping: the queue, its health check and the
            "arq:queue:health-check",  # set of aborted job ids (members are job ids)
            "arq:abort",
            "syncd:@poll:schedule",  # shared sets of bindings: the test checks a run
            "syncd:@runs:running",  # names only its own binding in them
        }
        or re.fullmatch(rf"arq:(job|in-progress|retry|result):syncd:{t.id}:.+", key) is not None
    )


def _shared_members(commands: list[list[str]]) -> set[str]:
    """The members a run wrote to the shared sets: the poll schedule (``ZADD key [opts]
    score member``) and the set of runs in flight (``SADD``/``SREM key member``)."""
    found: set[str] = set()
    for args in commands:
        op, key = (args[0].upper(), args[1]) if len(args) > 1 else ("", "")
        if op == "ZADD" and key == "syncd:@poll:schedule":
            rest = [a for a in args[2:] if a.upper() not in {"XX", "NX", "LT", "GT", "CH"}]
            found.update(rest[1::2])
        elif op in {"SADD", "SREM"} and key == "syncd:@runs:running":
            found.update(args[2:])
    return found


# --- MONITOR ----------------------------------------------------------------------------------


def _unescape(arg: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), arg)


@asynccontextmanager
async def monitored(redis_url: str) -> AsyncIterator[list[list[str]]]:
    """Collect every command Redis runs inside the block (as argument lists)."""
    commands: list[list[str]] = []
    marker = f"end-of-monitor-{free_port()}"
    watcher = aredis.Redis.from_url(redis_url)
    seen_marker = asyncio.Event()

    async def read(started: asyncio.Event) -> None:
        async with watcher.monitor() as mon:
            started.set()
            while True:
                line = await mon.connection.read_response()
                text = line.decode() if isinstance(line, bytes) else str(line)
                args = [_unescape(a) for a in _ARG.findall(text.split("] ", 1)[-1])]
                if args[:2] == ["ECHO", marker]:
                    seen_marker.set()
                    return
                commands.append(args)

    started = asyncio.Event()
    task = asyncio.create_task(read(started))
    await started.wait()
    try:
        yield commands
    finally:
        other = aredis.Redis.from_url(redis_url)
        await other.echo(marker)
        await asyncio.wait_for(seen_marker.wait(), 10)
        await other.aclose()
        await task
        await watcher.aclose()


async def touched_keys(redis_url: str, commands: list[list[str]]) -> set[str]:
    """Every key the commands name, as Redis itself tells (``COMMAND GETKEYS``)."""
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    found: set[str] = set()
    try:
        for args in commands:
            if not args or args[0].upper() in {"MONITOR", "CLIENT", "PING", "INFO", "HELLO"}:
                continue
            try:
                found.update(await client.command_getkeys(*args))
            except ResponseError:
                continue  # a command without keys
    finally:
        await client.aclose()
    return found


# --- the world --------------------------------------------------------------------------------


def _seed() -> dict[str, object]:
    apps = [
        {
            "app_key": t.app_key,
            "app_secret": t.app_secret,
            "corp_id": f"corp-{t.id}",
            "callback": {"url": None, "token": t.token, "aes_key": t.aes_key},
        }
        for t in TENANTS
    ]
    users = [
        {"union_id": "u-alice", "name": "Alice", "email": "alice@acme.example"},
        {"union_id": "u-bob", "name": "Bob", "email": "bob@globex.example"},
    ]
    return {"apps": apps, "users": users}


def _write_config(root: Path, api: str, cals: dict[str, CalendarHandle], redis_url: str) -> Path:
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nlog: {{format: console}}\n")
    for t in TENANTS:
        email = "alice@acme.example" if t.user == "u-alice" else "bob@globex.example"
        (root / "tenants" / f"{t.id}.yaml").write_text(
            textwrap.dedent(
                f"""\
                id: {t.id}
                dingtalk:
                  api_base: {api}
                  app_key: {t.app_key}
                  app_secret: {t.app_secret}
                  callback: {{token: {t.token}, aes_key: {t.aes_key}}}
                directory:
                  - {{union_id: {t.user}, email: {email}}}
                bindings:
                  - id: {t.binding}
                    dingtalk_user: {t.user}
                    caldav: {{url: "{cals[t.id].url}", username: {USERNAME}, password: {PASSWORD}}}
                """
            )
        )
    return root


@dataclass
class Two:
    """Both tenants running: config, webhook URL, sandbox, calendars, Redis URL."""

    config: Config
    webhook: str
    sandbox: SandboxHandle
    calendars: dict[str, CalendarHandle]
    redis_url: str

    async def reconcile(self, t: TenantSpec) -> None:
        """Queue ``t``'s binding and run a real burst worker until the queue is empty."""
        pool = await create_pool(queue.redis_settings(self.redis_url))
        try:
            await queue.request_reconcile(pool, t.ref, "test")
        finally:
            await pool.aclose()
        worker = create_worker(self.config, burst=True, poll=False)
        try:
            await worker.main()
        finally:
            await worker.close()

    async def caldav_summaries(self, t: TenantSpec) -> list[str]:
        async with CalDAVClient(self.calendars[t.id].url, *self.calendars[t.id].auth) as client:
            items = (await client.sync(None)).items
        return sorted(
            line[8:] for i in items for line in i.text.splitlines() if line.startswith("SUMMARY:")
        )

    def dingtalk_summaries(self, t: TenantSpec) -> list[str]:
        return sorted(e["summary"] for e in self.sandbox.sandbox.events_of(t.user))


@pytest.fixture
async def two(tmp_path: Path, radicale_server: CalDAVServer, redis_url: str) -> AsyncIterator[Two]:
    """Sandbox (two apps), two Radicale calendars, config and webhook of acme and globex."""
    app = create_app(seed_from_data(_seed()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sandbox = SandboxHandle(f"http://127.0.0.1:{port}", app[SANDBOX_KEY], app)
    cals = {t.id: make_calendar(radicale_server) for t in TENANTS}
    config = load_config(_write_config(tmp_path / "config", sandbox.url, cals, redis_url), {})
    hook = web.AppRunner(webhook_app(config), access_log=None)
    await hook.setup()
    hook_port = free_port()
    await web.TCPSite(hook, "127.0.0.1", hook_port).start()
    try:
        yield Two(config, f"http://127.0.0.1:{hook_port}", sandbox, cals, redis_url)
    finally:
        await hook.cleanup()
        await runner.cleanup()


async def _seed_both(two: Two) -> None:
    """One DingTalk event (through each tenant's own app) and one CalDAV item per tenant."""
    async with aiohttp.ClientSession() as session:
        for n, t in enumerate(TENANTS):
            async with session.post(
                f"{two.sandbox.url}/v1.0/oauth2/accessToken",
                json={"appKey": t.app_key, "appSecret": t.app_secret},
            ) as resp:
                token = (await resp.json())["accessToken"]
            url = two.sandbox.calendar_url(t.user)
            body = timed_event(f"{t.id} from dingtalk", day=10 + n)
            async with session.post(
                url, json=body, headers={"x-acs-dingtalk-access-token": token}
            ) as resp:
                assert resp.status == 200
            ics = (
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
                f"UID:{t.id}-dav@test\r\nDTSTAMP:20250101T000000Z\r\n"
                "DTSTART:20270301T020000Z\r\nDTEND:20270301T030000Z\r\n"
                f"SUMMARY:{t.id} from caldav\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
            assert two.calendars[t.id].put_raw(f"{t.id}.ics", ics)[0] == 201


# --- the tests --------------------------------------------------------------------------------


async def test_each_tenants_reconcile_touches_only_its_own_keys(two: Two) -> None:
    """A real reconcile of one tenant (under MONITOR) reads and writes only its keys; its
    sides change and the other tenant's do not."""
    await _seed_both(two)
    for t, other in ((ACME, GLOBEX), (GLOBEX, ACME)):
        other_before = (two.dingtalk_summaries(other), await two.caldav_summaries(other))
        async with monitored(two.redis_url) as commands:
            await two.reconcile(t)
        keys = await touched_keys(two.redis_url, commands)
        print(f"\n{t.id} reconcile: {len(commands)} Redis commands, {len(keys)} keys")
        assert f"syncd:{t.id}:binding:{t.binding}:pairs" in keys  # MONITOR saw the work
        assert f"syncd:@dingtalk:{t.app_key}:rate" in keys  # its own app's request pace
        foreign = sorted(k for k in keys if not owned_by(k, t))
        assert foreign == []
        own = {f"{t.id}/{t.binding}", f"{t.id}:{t.binding}"}  # schedule / running-set form
        assert _shared_members(commands) <= own  # only its own binding
        assert not any(k.startswith(f"syncd:{other.id}:") or other.app_key in k for k in keys)
        mine = [f"{t.id} from caldav", f"{t.id} from dingtalk"]
        assert two.dingtalk_summaries(t) == mine
        assert await two.caldav_summaries(t) == mine
        assert (two.dingtalk_summaries(other), await two.caldav_summaries(other)) == other_before


def _hook_tenant(tenant: str) -> TenantSpec:
    """The webhook fixture's tenants (both have bindings for u-alice)."""
    if tenant == "acme":
        return TenantSpec("acme", APP_KEY, "", CALLBACK_TOKEN, AES_KEY, "u-alice", "alice-work")
    return TenantSpec("globex", "dingglobex", "", GLOBEX_TOKEN, GLOBEX_AES, "u-alice", "g-alice")


async def test_callbacks_reach_only_their_own_tenant(hook: Hook, redis_url: str) -> None:
    """Both tenants bind u-alice. A's keys sent to /callbacks/B are refused and touch no key;
    a valid A callback for u-alice queues only A's bindings and touches only A's keys."""
    own_jobs = {
        "acme": [queue.job_id_for(BindingRef("acme", b)) for b in ("alice-home", "alice-work")],
        "globex": [queue.job_id_for(BindingRef("globex", "g-alice"))],
    }
    for name, other_name in (("acme", "globex"), ("globex", "acme")):
        t = _hook_tenant(name)
        await hook.redis.flushall()
        query, body = sealed_push(
            json.dumps(change_push(["u-alice"])),
            token=t.token,
            aes_key=t.aes_key,
            owner_key=t.app_key,
        )
        async with monitored(redis_url) as commands:
            status, answer = await hook.post(other_name, query, body)
        assert status == 403, answer
        assert await touched_keys(redis_url, commands) == set()
        await hook.assert_nothing_queued()

        async with monitored(redis_url) as commands:
            status, answer = await hook.post(name, query, body)
        hook.assert_success(status, answer, tenant=name)
        keys = await touched_keys(redis_url, commands)
        assert keys  # the push was stored and queued: MONITOR saw it
        assert sorted(k for k in keys if not owned_by(k, t)) == []
        assert await hook.queued() == sorted(own_jobs[name])
        assert all(d.startswith(f"{name}/") for d in await hook.dirty())
