"""Dead letters heal: a later successful run resolves them, and ``syncd status`` says why.

Through the real parts: arq workers in burst mode, the ``syncd`` command as a subprocess,
Redis, Radicale and the sandbox. A binding-level dead letter (a run that failed for good)
is resolved by the binding's next successful run; an item-level one (an item that could
not be written) when that item is written successfully. ``syncd status`` prints the
reason of the last failure and exits 1 while a binding is failed or degraded.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.cli._health import binding_health
from syncd.config import load_config
from syncd.store.redis import RedisStore
from tests.fixtures.caldav_servers import CalDAVServer, make_calendar
from tests.fixtures.spine import REF, Spine, write_config
from tests.integration.test_cli_ops import RADICALE_ONLY, syncd
from tests.integration.test_spine import timed_event

HOURLY = "FREQ=HOURLY;COUNT=3"  # DingTalk has no hourly recurrence: Unrepresentable


def _series(uid: str, summary: str, rrule: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
        "DTSTART:20270105T020000Z\r\nDTEND:20270105T030000Z\r\n"
        f"RRULE:{rrule}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@RADICALE_ONLY
async def test_missing_calendar_fails_then_heals_once_it_exists(
    spine: Spine, radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """A 404 calendar: no dead letter, status failed with the reason "calendar not found:
    URL" (exit 1); once the calendar is created the next poll's run succeeds by itself
    (status ok, exit 0, no replay needed)."""
    name = f"later-{uuid.uuid4().hex[:8]}"
    url = f"{radicale_server.calendar_home}{name}/"
    auth = (radicale_server.username, radicale_server.password)
    root = write_config(tmp_path / "later", spine.sandbox, url, redis_url, auth=auth)
    config = load_config(root, {})
    store = RedisStore(spine.pool)
    await spine.api.create("u-alice", timed_event("Kick-off", day=12))

    await queue.request_reconcile(spine.pool, REF, "poll")
    await spine.run_worker(config)
    assert await store.list_dead_letters(REF) == []
    shown = await syncd(root, "status")
    assert shown.code == 1, shown
    (line,) = shown.lines
    assert "state=failed" in line
    assert "dead_letters=0" in line
    assert line.split(" reason=", 1)[1] == f"calendar not found: {url}"
    assert shown.stderr.strip().endswith("syncd: failed or degraded: acme/alice-work")
    (row,) = json.loads((await syncd(root, "status", "--json")).stdout)
    assert (row["health"], row["reason"]) == ("failed", f"calendar not found: {url}")

    make_calendar(radicale_server, name)  # the calendar appears (MKCALENDAR)
    await queue.request_reconcile(spine.pool, REF, "poll")
    await spine.run_worker(config)
    shown = await syncd(root, "status")
    assert shown.code == 0, shown
    assert "state=ok" in shown.stdout
    assert "dead_letters=0" in shown.stdout
    assert "reason=" not in shown.stdout
    (row,) = json.loads((await syncd(root, "status", "--json")).stdout)
    assert (row["health"], row["reason"]) == ("ok", None)


@RADICALE_ONLY
async def test_item_dead_letter_heals_when_the_item_is_written(
    spine: Spine, tmp_path: Path, redis_url: str
) -> None:
    """Two items DingTalk cannot hold: two item dead letters (status degraded, exit 1). One
    is fixed in CalDAV: ``syncd sync`` writes it and resolves only its letter."""
    root = write_config(
        tmp_path / "cli", spine.sandbox, spine.calendar.url, redis_url, auth=spine.calendar.auth
    )
    store = RedisStore(spine.pool)
    for uid in ("hourly-a@test", "hourly-b@test"):
        status, _ = spine.calendar.put_raw(f"{uid[:8]}.ics", _series(uid, uid[:8], HOURLY))
        assert status == 201
    await spine.settle(poll=True)
    letters = await store.list_dead_letters(REF)
    assert sorted(x["uid"] for x in letters) == ["hourly-a@test", "hourly-b@test"]
    assert {(x["kind"], x["error"]) for x in letters} == {("item", "Unrepresentable")}
    shown = await syncd(root, "status")
    assert shown.code == 1, shown
    reason = shown.lines[0].split(" reason=", 1)[1]
    assert reason.startswith("hourly-")
    assert "Unrepresentable: DingTalk cannot express" in reason

    await spine.settle(poll=True)  # nothing new: the run is clean, the letters stay
    assert len(await store.list_dead_letters(REF)) == 2
    assert (await store.get_status(REF))["state"] == "ok"
    assert (await syncd(root, "status")).code == 1  # dead letters waiting: degraded

    fixed = _series("hourly-a@test", "hourly-a", "FREQ=DAILY;COUNT=3")
    assert spine.calendar.put_raw("hourly-a.ics", fixed)[0] in (201, 204)
    result = await syncd(root, "sync", "acme", "alice-work")
    assert result.code == 0, result
    assert [e["summary"] for e in spine.dingtalk_events()] == ["hourly-a"]
    (left,) = await store.list_dead_letters(REF)
    assert left["uid"] == "hourly-b@test"
    shown = await syncd(root, "status")
    assert shown.code == 1
    assert "dead_letters=1" in shown.stdout
    assert "hourly-b@test: Unrepresentable" in shown.stdout


@pytest.mark.parametrize(
    ("status", "letters", "health"),
    [
        ({}, [], ("never-run", None)),
        ({"state": "ok"}, [], ("ok", None)),
        ({"state": "failed", "last_error": "NotFound: 404"}, [], ("failed", "NotFound: 404")),
        (
            {"state": "blocked", "last_error": "SourceEmptied: x"},
            [],
            ("degraded", "SourceEmptied: x"),
        ),
        ({"state": "held", "held_deletions": ["a", "b"]}, [], ("degraded", "2 deletion(s) held")),
        (
            {"state": "partial", "errors": [{"uid": "u", "error": "E", "message": "m"}] * 2},
            [],
            ("degraded", "u: E: m (+1 more)"),
        ),
        (
            {"state": "ok"},
            [{"error": "old"}, {"error": "SourceUnavailable: 5 tries"}],
            ("degraded", "SourceUnavailable: 5 tries"),
        ),
    ],
)
def test_binding_health(
    status: dict[str, object], letters: list[dict[str, object]], health: tuple[str, str | None]
) -> None:
    """Health and reason of each kind of status; the newest dead letter gives the reason."""
    assert binding_health(status, letters) == health


@RADICALE_ONLY
async def test_create_true_makes_the_calendar_and_syncs_into_it(
    spine: Spine, radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """``caldav.create: true``: the first worker run makes the calendar (MKCALENDAR) and
    copies the user's DingTalk event into it; status ok, no dead letter."""
    url = f"{radicale_server.calendar_home}made-{uuid.uuid4().hex[:8]}/"
    auth = (radicale_server.username, radicale_server.password)
    root = write_config(tmp_path / "made", spine.sandbox, url, redis_url, auth=auth)
    tenant = root / "tenants" / "acme.yaml"
    doc = yaml.safe_load(tenant.read_text())
    doc["bindings"][0]["caldav"]["create"] = True
    tenant.write_text(yaml.safe_dump(doc))
    config = load_config(root, {})
    dav_config = config.tenant("acme").binding("alice-work").caldav
    assert dav_config is not None
    assert dav_config.create is True
    await spine.api.create("u-alice", timed_event("Made for you", day=9))

    await queue.request_reconcile(spine.pool, REF, "poll")
    await spine.run_worker(config)
    store = RedisStore(spine.pool)
    assert (await store.get_status(REF))["state"] == "ok"
    assert await store.list_dead_letters(REF) == []
    async with CalDAVClient(url, *auth) as dav:
        listed = await dav.sync(None)
    assert ["SUMMARY:Made for you" in item.text for item in listed.items] == [True]
