"""The sandbox's /_sandbox/ admin routes, its state file, and the ``syncd sandbox`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from syncd_lab.sandbox.seed import load_seed
from syncd_lab.stack.ports import free_port
from tests.fixtures.sandbox import SandboxApi as Api
from tests.fixtures.sandbox import SandboxHandle, sandbox_token, start_sandbox
from tests.fixtures.sandbox import timed_event as timed

SYNCD = str(Path(sys.executable).with_name("syncd"))  # the installed console script
SEED_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox_seed.yaml"


@pytest.fixture
def api(sandbox_api: Api) -> Api:
    """Short name for the ``sandbox_api`` fixture."""
    return sandbox_api


async def admin(api: Api, method: str, route: str, json: object = None) -> tuple[int, object]:
    """Call a /_sandbox/ route (no token needed)."""
    async with api.s.request(method, f"{api.h.url}/_sandbox/{route}", json=json) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_stats_count_operations_by_sdk_name(api: Api) -> None:
    """GET /_sandbox/stats counts requests per SDK action name; admin calls are not counted."""
    ev = await api.create("u-alice", timed("x"))
    await api.call("GET", api.events("u-alice", f"/{ev['id']}"))
    await api.call("GET", api.events("u-alice"))
    await api.call("PUT", api.events("u-alice", f"/{ev['id']}"), json={"id": ev["id"]})
    await api.call("DELETE", api.events("u-alice", f"/{ev['id']}"))
    status, stats = await admin(api, "GET", "stats")
    assert status == 200
    assert isinstance(stats, dict)
    assert stats["requests"] == {
        "GetAccessToken": 1,
        "CreateEvent": 1,
        "GetEvent": 1,
        "ListEvents": 1,
        "PatchEvent": 1,
        "DeleteEvent": 1,
    }
    assert set(stats["callbacks"]) >= {"sent", "failed"}


async def test_reset_empties_calendars_and_counters(api: Api, sandbox: SandboxHandle) -> None:
    """POST /_sandbox/reset empties every calendar and counter; tokens stay valid."""
    await api.create("u-alice", timed("x"))
    status, _ = await admin(api, "POST", "reset")
    assert status == 200
    assert sandbox.sandbox.events_of("u-alice", include_deleted=True) == []
    assert sandbox.sandbox.stats()["requests"] == {}
    status, body = await api.call("GET", api.events("u-alice"))
    assert status == 200
    assert body["events"] == []


async def test_state_dump_lists_events(api: Api) -> None:
    """GET /_sandbox/state holds every stored event."""
    ev = await api.create("u-alice", timed("dumped"))
    status, state = await admin(api, "GET", "state")
    assert status == 200
    assert isinstance(state, dict)
    assert state["events"][ev["id"]]["fields"]["summary"] == "dumped"


async def test_faults_route_sets_and_validates(api: Api) -> None:
    """POST /_sandbox/faults applies settings; unknown names or bad rates → 400."""
    status, body = await admin(api, "POST", "faults", {"throttle_rate": 1.0})
    assert status == 200
    assert isinstance(body, dict)
    assert body["throttle_rate"] == 1.0
    status, _ = await api.call("GET", api.events("u-alice"))
    assert status == 403
    assert (await admin(api, "POST", "faults", {"bogus": 1}))[0] == 400
    assert (await admin(api, "POST", "faults", {"error_rate": 2}))[0] == 400
    assert (await admin(api, "POST", "faults", {"throttle_rate": 0}))[0] == 200
    status, _ = await api.call("GET", api.events("u-alice"))
    assert status == 200


async def test_latency_fault_delays_answers(api: Api) -> None:
    """latency_ms delays every API answer."""
    await admin(api, "POST", "faults", {"latency_ms": 300})
    began = time.monotonic()
    await api.call("GET", api.events("u-alice"))
    assert time.monotonic() - began >= 0.3


async def test_expire_route_invalidates_sync_tokens(api: Api) -> None:
    """POST /_sandbox/expire {what: sync_tokens} makes old syncTokens fail."""
    _, sync = await api.list_all("u-alice")
    await admin(api, "POST", "expire", {"what": "sync_tokens"})
    status, body = await api.call("GET", api.events("u-alice"), params={"syncToken": sync})
    assert (status, body["code"]) == (400, "invalidParameter.syncToken")


async def test_state_file_survives_restart(tmp_path: Path) -> None:
    """With a state file, events, access tokens and sync tokens survive a restart."""
    state = tmp_path / "sandbox.json"
    async with start_sandbox(state_file=state) as handle, aiohttp.ClientSession() as s:
        token = await sandbox_token(handle)
        api = Api(handle, s, token)
        ev = await api.create("u-alice", timed("persisted", attendees=[{"id": "u-bob"}]))
        _, sync = await api.list_all("u-alice")
    async with start_sandbox(state_file=state) as handle, aiohttp.ClientSession() as s:
        api = Api(handle, s, token)
        status, got = await api.call("GET", api.events("u-bob", f"/{ev['id']}"))
        assert status == 200
        assert got["summary"] == "persisted"
        delta, _ = await api.list_all("u-alice", syncToken=sync)
        assert delta == []
        second = await api.create("u-alice", timed("after restart"))
        assert second["updateTime"] > ev["updateTime"]


def test_seed_file_loads() -> None:
    """The shipped seed file names the fixture's app and users."""
    seed = load_seed(SEED_FILE)
    assert [a.app_key for a in seed.apps] == ["dingabc123"]
    assert [u.union_id for u in seed.users] == ["u-alice", "u-bob", "u-carol"]


def test_cli_serves_the_sandbox(tmp_path: Path) -> None:
    """``syncd sandbox --listen --seed --state`` serves tokens and events until stopped."""
    port = free_port()
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [
            SYNCD,
            "sandbox",
            "--listen",
            f"127.0.0.1:{port}",
            "--seed",
            str(SEED_FILE),
            "--state",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = _token_when_up(port, proc)
        assert body["expireIn"] == 7200
    finally:
        proc.terminate()
        proc.wait(10)
    assert state.exists()


def _token_when_up(port: int, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 20
    creds = json.dumps({"appKey": "dingabc123", "appSecret": "s3cret-app-secret"}).encode()
    url = f"http://127.0.0.1:{port}/v1.0/oauth2/accessToken"
    while True:
        request = urllib.request.Request(url, data=creds, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
                return dict(json.loads(resp.read()))
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)


def test_cli_bad_seed_exits_2(tmp_path: Path) -> None:
    """An invalid seed file: exit 2 and one line per problem, no traceback."""
    bad = tmp_path / "seed.yaml"
    bad.write_text("apps: [{app_key: k}]\n")
    done = subprocess.run(
        [SYNCD, "sandbox", "--seed", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "apps.0.app_secret" in done.stderr
    assert "Traceback" not in done.stderr
