"""Quiet polls: a reconcile lists DingTalk only when something may have changed there.

The real webhook, Redis, arq workers, the sandbox and Radicale (the spine). A DingTalk
push marks the binding (the same Lua script that queues the delivery); the run takes the
mark and lists DingTalk. A run without a mark lists DingTalk only when the CalDAV delta
is not empty (before planning, so a concurrent DingTalk edit whose push has not arrived is
still merged three-way), on a full, first or failed run, and every ``dingtalk.list_every``.
DingTalk requests are counted by the sandbox, CalDAV requests by Radicale's log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncd import queue
from syncd.config import Config, load_config
from syncd.store import keys
from syncd.store.redis import RedisStore
from syncd.worker import tasks
from syncd.worker.settings import shutdown, startup
from syncd_lab.stack.ports import free_port
from tests.fixtures.spine import (
    RADICALE_ONLY,
    REF,
    STANDUP_ICS,
    Spine,
    summaries,
    timed_event,
)

pytestmark = RADICALE_ONLY

ICS = STANDUP_ICS


def dingtalk_requests(spine: Spine) -> dict[str, int]:
    """Every DingTalk API request so far, by operation."""
    return dict(spine.sandbox.sandbox.stats()["requests"])


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}


def reconfigure(spine: Spine, root: Path, **dingtalk: Any) -> Config:
    """Rewrite the tenant's ``dingtalk:`` settings in the spine's config dir ``root`` and
    reload; the spine serves the result."""
    path = root / "tenants" / "acme.yaml"
    data = yaml.safe_load(path.read_text())
    data["dingtalk"].update(dingtalk)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    spine.config = load_config(root, {})
    return spine.config


def pushes_off(spine: Spine) -> None:
    """DingTalk's pushes do not reach syncd (delayed or lost): no callback URL registered."""
    spine.sandbox.sandbox.set_callback(spine.sandbox.app_key, None)


def pushes_on(spine: Spine) -> None:
    spine.sandbox.sandbox.set_callback(spine.sandbox.app_key, spine.webhook_url)


async def poll_once(spine: Spine) -> None:
    """What the poll cron does for the binding, then one burst worker."""
    await queue.request_reconcile(spine.pool, REF, "poll")
    await spine.run_worker()


async def synced_standup(spine: Spine) -> str:
    """A CalDAV event copied to DingTalk and settled; returns its DingTalk id."""
    put = spine.calendar.put_raw("standup.ics", ICS.format(summary="Standup", location="Room 4"))
    assert put[0] in (201, 204)
    await spine.settle(poll=True)
    [event] = spine.dingtalk_events()
    return str(event["id"])


async def test_idle_poll_makes_no_dingtalk_request(spine: Spine) -> None:
    """After a sync, the poll that reads back our own CalDAV write (an echo) and then an
    idle poll make 0 DingTalk requests; the idle poll makes 1 CalDAV request."""
    await spine.api.create("u-alice", timed_event("Design review", day=22))
    await spine.settle()
    dt_before = dingtalk_requests(spine)
    await poll_once(spine)  # Radicale reports the item syncd wrote: an echo
    assert delta(dingtalk_requests(spine), dt_before) == {}
    dav_before = len(spine.calendar.settled_requests())
    await poll_once(spine)
    dav = spine.calendar.settled_requests()[dav_before:]
    print(f"\nidle poll: dingtalk={delta(dingtalk_requests(spine), dt_before)} caldav={dav}")
    assert delta(dingtalk_requests(spine), dt_before) == {}
    assert [method for method, _ in dav] == ["REPORT"]
    status = await RedisStore(spine.pool).get_status(REF)
    assert status.state == "ok"


async def test_list_every_always_lists_dingtalk_on_every_poll(spine: Spine, tmp_path: Path) -> None:
    """``list_every: always`` (for pushes that cannot reach syncd) keeps the behaviour
    before quiet polls: an idle poll makes one ListEvents and one REPORT."""
    reconfigure(spine, tmp_path / "config", list_every="always")
    await spine.api.create("u-alice", timed_event("Design review", day=22))
    await spine.settle()
    await poll_once(spine)
    dt_before, dav_before = dingtalk_requests(spine), len(spine.calendar.settled_requests())
    await poll_once(spine)
    dav = spine.calendar.settled_requests()[dav_before:]
    made = delta(dingtalk_requests(spine), dt_before)
    print(f"\nidle poll, list_every always: dingtalk={made} caldav={dav}")
    assert made == {"ListEvents": 1}
    assert [method for method, _ in dav] == ["REPORT"]


async def test_a_push_makes_the_next_run_list_dingtalk(spine: Spine) -> None:
    """A DingTalk change pushed by callback is listed by the run it queues, then quiet."""
    await spine.settle(poll=True)
    before = dingtalk_requests(spine)
    await spine.api.create("u-alice", timed_event("Retro", day=24))
    await spine.sandbox.sandbox.drain()
    assert await spine.pool.exists(keys.binding_key(REF, keys.PUSHED))
    await spine.run_worker()
    assert delta(dingtalk_requests(spine), before).get("ListEvents", 0) >= 1
    assert summaries((await spine.caldav_items()).items) == ["Retro"]
    assert not await spine.pool.exists(keys.binding_key(REF, keys.PUSHED))
    before = dingtalk_requests(spine)
    await poll_once(spine)
    assert delta(dingtalk_requests(spine), before) == {}


async def test_a_request_other_than_a_poll_lists_dingtalk(spine: Spine) -> None:
    """A change made while pushes do not arrive is found by any request but a poll (an
    operator's, a revive's): only a poll may leave DingTalk unlisted."""
    await spine.settle(poll=True)
    pushes_off(spine)
    await spine.api.create("u-alice", timed_event("Unannounced", day=25))
    await poll_once(spine)
    assert summaries((await spine.caldav_items()).items) == []  # a quiet poll misses it
    before = dingtalk_requests(spine)
    await queue.request_reconcile(spine.pool, REF, "operator")
    await spine.run_worker()
    assert delta(dingtalk_requests(spine), before).get("ListEvents", 0) >= 1
    assert summaries((await spine.caldav_items()).items) == ["Unannounced"]


async def test_a_caldav_change_lists_dingtalk(spine: Spine) -> None:
    """With no push pending, a CalDAV change still lists DingTalk (once) before writing."""
    await synced_standup(spine)
    pushes_off(spine)
    before = dingtalk_requests(spine)
    put = spine.calendar.put_raw("standup.ics", ICS.format(summary="Standup", location="Room 9"))
    assert put[0] in (201, 204)
    await poll_once(spine)
    made = delta(dingtalk_requests(spine), before)
    assert (made.get("ListEvents"), made.get("PatchEvent")) == (1, 1)
    assert spine.dingtalk_events()[0]["location"]["displayName"] == "Room 9"


@pytest.mark.parametrize("list_every", ["always", "5m"])
async def test_concurrent_edits_with_the_push_delayed(
    spine: Spine, tmp_path: Path, list_every: str
) -> None:
    """DingTalk and CalDAV edit the same event while DingTalk's push is held back: the
    CalDAV poll lists DingTalk first, so the field merge and the conflict come out exactly
    as when DingTalk is listed on every run (``always``, the behaviour before)."""
    reconfigure(spine, tmp_path / "config", list_every=list_every)
    event_id = await synced_standup(spine)
    pushes_off(spine)
    # Different fields: DingTalk renames, CalDAV moves the room; both edits survive.
    path = spine.api.events("u-alice", f"/{event_id}")
    status, _ = await spine.api.call("PUT", path, json={"id": event_id, "summary": "Standup (DT)"})
    assert status == 200
    put = spine.calendar.put_raw("standup.ics", ICS.format(summary="Standup", location="Room 9"))
    assert put[0] in (201, 204)
    await poll_once(spine)
    [event] = spine.dingtalk_events()
    assert (event["summary"], event["location"]["displayName"]) == ("Standup (DT)", "Room 9")
    text = (await spine.caldav_items()).items[0].text
    assert "SUMMARY:Standup (DT)" in text
    assert "LOCATION:Room 9" in text
    # The same field on both sides: one recorded conflict, decided as before (``newest``:
    # the CalDAV copy carries no LAST-MODIFIED, DingTalk's edit has its updateTime).
    status, _ = await spine.api.call("PUT", path, json={"id": event_id, "summary": "From DT"})
    assert status == 200
    put = spine.calendar.put_raw("standup.ics", ICS.format(summary="From DAV", location="Room 9"))
    assert put[0] in (201, 204)
    await poll_once(spine)
    conflicts = await RedisStore(spine.pool).list_conflicts(REF)
    assert len(conflicts) == 1
    assert [e["summary"] for e in spine.dingtalk_events()] == ["From DT"]
    assert summaries((await spine.caldav_items()).items) == ["From DT"]


async def test_a_lost_push_is_found_within_list_every(spine: Spine, tmp_path: Path) -> None:
    """A DingTalk change whose push never arrives is listed once ``list_every`` has passed
    since the last listing; before that, polls leave DingTalk alone."""
    reconfigure(spine, tmp_path / "config", list_every="6s")
    await spine.settle(poll=True)
    listed_key = keys.binding_key(REF, keys.LISTED)
    assert await spine.pool.pttl(listed_key) > 0
    pushes_off(spine)
    await spine.api.create("u-alice", timed_event("Lost push", day=25))
    before = dingtalk_requests(spine)
    await poll_once(spine)
    if await spine.pool.pttl(listed_key) > 0:  # still within list_every (a slow machine: no)
        assert delta(dingtalk_requests(spine), before) == {}
        assert summaries((await spine.caldav_items()).items) == []
    for _ in range(100):
        if await spine.pool.pttl(listed_key) < 0:
            break
        await asyncio.sleep(0.1)
    await poll_once(spine)
    assert summaries((await spine.caldav_items()).items) == ["Lost push"]


async def failing_run(spine: Spine, tmp_path: Path) -> str:
    """The binding's reconcile job on its last try against a CalDAV URL nobody serves."""
    root = tmp_path / "broken"
    (root / "tenants").mkdir(parents=True)
    source = tmp_path / "config"  # the spine's
    (root / "syncd.yaml").write_text((source / "syncd.yaml").read_text())
    tenant = yaml.safe_load((source / "tenants" / "acme.yaml").read_text())
    tenant["bindings"][0]["caldav"]["url"] = f"http://127.0.0.1:{free_port()}/nobody/cal/"
    (root / "tenants" / "acme.yaml").write_text(yaml.safe_dump(tenant))
    ctx: dict[str, Any] = {"redis": spine.pool, "job_try": tasks.MAX_TRIES}
    await startup(ctx, load_config(root, {}))
    try:
        return await tasks.reconcile_binding(ctx, REF.tenant, REF.binding, "test")
    finally:
        await shutdown(ctx)


async def test_the_push_mark_is_restored_after_a_failed_run(spine: Spine, tmp_path: Path) -> None:
    """A run that took the push mark and failed puts it back (and forgets the last
    listing), so the next run lists DingTalk and the pushed change arrives."""
    await spine.settle(poll=True)
    pushes_off(spine)
    await spine.api.create("u-alice", timed_event("Pushed", day=26))
    # The push arrives (as the webhook queues it), then the run fails on CalDAV.
    assert await queue.queue_delivery(spine.pool, "acme", "push-1", [REF], "callback") == [True]
    pushed, listed = keys.binding_key(REF, keys.PUSHED), keys.binding_key(REF, keys.LISTED)
    assert await spine.pool.exists(listed)
    outcome = await failing_run(spine, tmp_path)
    assert outcome.startswith("failed")
    assert await spine.pool.exists(pushed)
    assert not await spine.pool.exists(listed)
    before = dingtalk_requests(spine)
    await spine.run_worker()  # the job queued by the push, on the working configuration
    assert delta(dingtalk_requests(spine), before).get("ListEvents", 0) >= 1
    assert summaries((await spine.caldav_items()).items) == ["Pushed"]
    assert not await spine.pool.exists(pushed)
