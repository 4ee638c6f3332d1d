"""End to end: a binding template over a department of the sandbox's seed creates the
members' Radicale calendars (``caldav.create``) and syncs every member DingTalk ->
Radicale, attendees by their imported e-mail; a member who leaves loses the binding, not
the data.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from arq.connections import create_pool

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import load_config
from syncd.model import BindingRef
from syncd.worker.context import worker_context
from syncd.worker.settings import create_worker
from syncd_lab.sandbox.seed import seed_from_data
from syncd_lab.stack import config as lab_config
from tests.fixtures.caldav_servers import CalDAVServer, http
from tests.fixtures.sandbox import (
    APP_KEY,
    APP_SECRET,
    CORP_ID,
    SandboxApi,
    sandbox_token,
    start_sandbox,
)

SYNCD = str(Path(sys.executable).with_name("syncd"))
MEMBERS = {"alice": [10], "bob": [11], "carol": [20]}  # 11 is under 10; 20 is not


def soon(summary: str) -> dict[str, Any]:
    """A one-hour event tomorrow (inside the default listing window)."""
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=1)
    end = start + timedelta(hours=1)
    return {
        "summary": summary,
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": end.isoformat(), "timeZone": "UTC"},
    }


def seed() -> Any:
    return seed_from_data(
        {
            "apps": [{"app_key": APP_KEY, "app_secret": APP_SECRET, "corp_id": CORP_ID}],
            "users": [
                {
                    "union_id": f"u-{n}",
                    "name": n.title(),
                    "email": f"{n}@acme.example",
                    "departments": d,
                }
                for n, d in MEMBERS.items()
            ],
            "departments": [{"id": 10}, {"id": 11, "parent": 10}, {"id": 20}],
        }
    )


def write(root: Path, api_base: str, server: CalDAVServer, tag: str, redis_url: str) -> Path:
    home = server.base_url + server.home_path_for(server.username)
    app = {"api_base": api_base, "app_key": APP_KEY, "app_secret": APP_SECRET}
    acme = {
        "id": "acme",
        "timezone": "Asia/Shanghai",
        "dingtalk": {**app, "delivery": "stream"},
        "directory": {"source": "dingtalk", "refresh": "1h"},
        "binding_templates": [
            {
                "id": "{local}-work",
                "users": {"department": 10},
                "caldav": {
                    "url": f"{home}{{local}}-{tag}/",
                    "username": server.username,
                    "password": server.password,
                    "create": True,
                },
                "direction": "both",
            }
        ],
    }
    settings = {"redis_url": redis_url, "log": {"format": "console"}}
    return lab_config.write_config_dir(root, settings, [acme])


async def syncd_json(root: Path, command: str = "directory") -> Any:
    """``syncd COMMAND acme --json``'s parsed output (the installed console script)."""
    proc = await asyncio.create_subprocess_exec(
        SYNCD, command, "acme", "--json", "--config", str(root),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def texts(url: str, server: CalDAVServer) -> str:
    async with CalDAVClient(url, server.username, server.password) as client:
        raw = await client.sync(None)
    return "\n".join(item.text for item in raw.items)


async def summaries(url: str, server: CalDAVServer) -> list[str]:
    lines = (await texts(url, server)).splitlines()
    return sorted(line.split(":", 1)[1] for line in lines if line.startswith("SUMMARY:"))


async def test_department_template_syncs_every_member(
    tmp_path: Path, radicale_server: CalDAVServer, redis_url: str
) -> None:
    server, tag = radicale_server, uuid.uuid4().hex[:8]
    async with start_sandbox(seed()) as sb, aiohttp.ClientSession() as session:
        root = write(tmp_path / "config", sb.url, server, tag, redis_url)
        home = server.base_url + server.home_path_for(server.username)
        api = SandboxApi(sb, session, await sandbox_token(sb))
        for name in MEMBERS:
            await api.create(f"u-{name}", soon(f"{name} meeting"))
        # carol is in no binding and no static list: she is named by her imported e-mail.
        await api.create("u-alice", {**soon("with carol"), "attendees": [{"id": "u-carol"}]})

        listed = await syncd_json(root)
        assert [u["union_id"] for u in listed["users"]] == ["u-alice", "u-bob", "u-carol"]
        assert listed["users"][1] == {
            "union_id": "u-bob", "email": "bob@acme.example", "name": "Bob", "departments": [11],
        }  # fmt: skip
        assert listed["bindings"] == [
            {
                "id": f"{n}-work",
                "dingtalk_user": f"u-{n}",
                "caldav_url": f"{home}{n}-{tag}/",
                "from_template": True,
            }
            for n in ("alice", "bob")
        ]

        config = load_config(root, {})
        pool = await create_pool(queue.redis_settings(redis_url))
        try:
            for n in ("alice", "bob"):
                await queue.request_reconcile(pool, BindingRef("acme", f"{n}-work"), "poll")
            worker = create_worker(config, burst=True, poll=False)
            try:
                await worker.main()
                served = {b.id for _, b in worker_context(worker.ctx).config.bindings()}
            finally:
                await worker.close()
            assert served == {"alice-work", "bob-work"}
            status = await syncd_json(root, "status")  # operator commands see them too
            assert sorted(row["binding"] for row in status) == ["acme/alice-work", "acme/bob-work"]
            assert await summaries(f"{home}alice-{tag}/", server) == ["alice meeting", "with carol"]
            assert await summaries(f"{home}bob-{tag}/", server) == ["bob meeting"]
            assert "mailto:carol@acme.example" in (await texts(f"{home}alice-{tag}/", server))
            # carol's department has no template: no calendar was made for her.
            status = http(
                f"{home}carol-{tag}/", "PROPFIND", auth=(server.username, server.password)
            )
            assert status[0] == 404

            # Bob leaves the organisation: his binding stops, his calendar is left alone.
            async with session.delete(f"{sb.url}/_sandbox/users/u-bob") as resp:
                assert resp.status == 200
            await pool.delete("syncd:acme:directory_due")  # the refresh is due now
            worker = create_worker(config, burst=True, poll=False)
            try:
                await worker.main()
                served = {b.id for _, b in worker_context(worker.ctx).config.bindings()}
            finally:
                await worker.close()
            assert served == {"alice-work"}
            assert await summaries(f"{home}bob-{tag}/", server) == ["bob meeting"]
            listed = await syncd_json(root)
            assert [b["id"] for b in listed["bindings"]] == ["alice-work"]
        finally:
            await pool.aclose()
            for name in MEMBERS:
                http(f"{home}{name}-{tag}/", "DELETE", auth=(server.username, server.password))
