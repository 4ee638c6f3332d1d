"""Config reload in a running ``syncd run``: new tenants taken, broken files refused.

A real ``syncd run --listen`` process on a real Redis with Radicale and the sandbox.
Editing a tenant file is noticed by the periodic check (no signal) and a binding added
that way is reconciled by the same process; SIGHUP reloads at once; an invalid file is
rejected with its reason in the log while the old configuration keeps serving; a
changed ``syncd.yaml`` is logged as needing a restart. Queued work is not dropped.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from syncd import queue
from syncd.model import BindingRef
from syncd.store.redis import RedisStore
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalDAVServer, make_calendar
from tests.fixtures.processes import SyncdProcess, start_syncd, write_fault_config
from tests.fixtures.spine import Spine, caldav_yaml
from tests.integration.test_cli_ops import RADICALE_ONLY

pytestmark = [pytest.mark.usefixtures("syncd_reaper"), pytest.mark.slow]

BOB = BindingRef("acme", "bob-work")


async def _ready(proc: SyncdProcess, base: str) -> None:
    async def answers() -> bool:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{base}/readyz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    for _ in range(100):
        if await answers():
            return
        assert proc.proc.returncode is None, proc.text()[-2000:]
        await asyncio.sleep(0.1)
    raise AssertionError(f"not ready:\n{proc.text()[-2000:]}")


async def _status_page(base: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/status") as r:
        return await r.text()


@RADICALE_ONLY
async def test_reload_takes_new_bindings_and_refuses_broken_files(
    spine: Spine, radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """Added binding served after a file edit; broken file refused (old config kept, with
    the reason logged); SIGHUP reloads; syncd.yaml changes need a restart; a job of a
    binding removed by a reload is skipped, not dead-lettered."""
    root = write_fault_config(tmp_path / "cfg", spine.sandbox, spine.calendar, redis_url)
    tenant_file = root / "tenants" / "acme.yaml"
    original = tenant_file.read_text()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_syncd("run", root, "--listen", f"127.0.0.1:{port}", log_dir=tmp_path)
    await _ready(proc, base)
    assert "bob-work" not in await _status_page(base)

    second = make_calendar(radicale_server)
    tenant_file.write_text(
        original
        + "  - id: bob-work\n    dingtalk_user: u-bob\n"
        + f"    caldav: {caldav_yaml(second.url, second.auth)}\n"
    )
    await proc.wait_logged("config_reloaded", within=15)
    (reloaded,) = proc.named("config_reloaded")
    assert (reloaded["why"], reloaded["bindings"]) == ("file changed", 2)
    assert "bob-work" in await _status_page(base)
    await queue.request_reconcile(spine.pool, BOB, "test")
    store = RedisStore(spine.pool)

    async def bob_ok() -> bool:
        return (await store.get_status(BOB)).get("state") == "ok"

    for _ in range(100):
        if await bob_ok():
            break
        await asyncio.sleep(0.2)
    assert await bob_ok(), proc.text()[-3000:]

    tenant_file.write_text(original + "  - id: broken\n    dingtalk_user: [not, a, string]\n")
    await proc.wait_logged("config_reload_rejected", within=15)
    (rejected,) = proc.named("config_reload_rejected")
    assert any("acme.yaml" in p and "dingtalk_user" in p for p in rejected["problems"])
    assert "bob-work" in await _status_page(base)  # the old config keeps serving

    tenant_file.write_text(original)
    (root / "syncd.yaml").write_text((root / "syncd.yaml").read_text() + "lock_ttl: 45s\n")
    proc.send(signal.SIGHUP)
    await proc.wait_logged("config_reloaded", within=10, count=2)
    assert proc.named("config_reloaded")[1]["bindings"] == 1
    assert proc.named("config_reload_settings_ignored")
    assert "bob-work" not in await _status_page(base)
    await queue.request_reconcile(spine.pool, BOB, "queued before the removal")
    await proc.wait_for(
        lambda: any(e.get("why") == "not configured" for e in proc.named("reconcile_skipped")),
        within=15,
        what="the removed binding's job skipped",
    )
    assert await RedisStore(spine.pool).list_dead_letters(BOB) == []  # skipped, not failed
    proc.send(signal.SIGTERM)
    assert await proc.exited(within=40) == 0
    assert json.dumps(proc.named("config_reload_settings_ignored")[0]).count("restart") == 1


@RADICALE_ONLY
async def test_reload_keeps_queued_work(spine: Spine, tmp_path: Path, redis_url: str) -> None:
    """``syncd web`` reloading (SIGHUP) leaves the queued reconcile jobs where they are."""
    root = write_fault_config(tmp_path / "cfg", spine.sandbox, spine.calendar, redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_syncd("web", root, "--listen", f"127.0.0.1:{port}", log_dir=tmp_path)
    await _ready(proc, base)
    await queue.request_reconcile(spine.pool, BindingRef("acme", "alice-work"), "test")
    queued = await spine.pool.zrange("arq:queue", 0, -1)
    assert len(queued) == 1
    proc.send(signal.SIGHUP)
    await proc.wait_logged("config_reloaded", within=10)
    assert proc.named("config_reloaded")[0]["why"] == "SIGHUP"
    assert await spine.pool.zrange("arq:queue", 0, -1) == queued
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics") as r:
        assert "syncd_queue_depth 1.0" in await r.text()
