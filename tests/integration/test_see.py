"""What an operator sees: ``/metrics`` gauges and the ``/status`` page, from the real parts.

A tenant with a binding that syncs (Radicale) and one whose calendar does not exist, run
by a real arq worker on a real Redis against the sandbox; then the web app is scraped.
The status page is loaded in headless Chromium (Debian's ``chromium``) and read as the
rendered DOM: what a person sees, not the HTML the server meant to send.
"""

from __future__ import annotations

import asyncio
import html.parser
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd import queue
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.store.redis import RedisStore
from syncd.sync.records import DeadLetter
from syncd.webhook.see import SCRAPE_GAUGES, Row, gauges_text, render_status
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalDAVServer
from tests.fixtures.processes import start_syncd, write_fault_config
from tests.fixtures.spine import RADICALE_ONLY, REF, Spine, caldav_yaml, timed_event, write_config
from tests.fixtures.webhook import serve_webhook

MISSING = BindingRef("acme", "bob-missing")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _binding(ref: BindingRef) -> tuple[tuple[str, str], ...]:
    return (("binding", ref.binding), ("tenant", ref.tenant))


def two_bindings(spine: Spine, server: CalDAVServer, root: Path, redis_url: str) -> Config:
    """alice-work on the spine's calendar, bob-missing on a calendar that does not exist."""
    cal = spine.calendar
    write_config(root, spine.sandbox, cal.url, redis_url, auth=(cal.username, cal.password))
    missing = f"{server.calendar_home}absent-{uuid.uuid4().hex[:8]}/"
    with (root / "tenants" / "acme.yaml").open("a") as tenant:
        tenant.write(
            f"  - id: bob-missing\n    dingtalk_user: u-bob\n"
            f"    caldav: {caldav_yaml(missing, (cal.username, cal.password))}\n"
        )
    return load_config(root, {})


@RADICALE_ONLY
async def test_metrics_show_lag_failures_dead_letters_and_queue(
    spine: Spine, radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """After one run: alice ok (small lag, last success), bob failed; a dead letter and a
    queued request show up; request counters count both sides by answer code."""
    config = two_bindings(spine, radicale_server, tmp_path / "cfg", redis_url)
    await spine.api.create("u-alice", timed_event("Seen", day=5))
    for ref in (REF, MISSING):
        await queue.request_reconcile(spine.pool, ref, "poll")
    await spine.run_worker(config)
    letter = DeadLetter("binding", "X: y", "2026-01-01T00:00:00+00:00", reason="poll")
    await RedisStore(spine.pool).add_dead_letter(REF, letter)
    await queue.request_reconcile(spine.pool, REF, "callback")  # one job waits
    async with (
        serve_webhook(config) as base,
        aiohttp.ClientSession() as session,
        session.get(f"{base}/metrics") as resp,
    ):
        assert resp.status == 200
        got = samples(await resp.text())
    now = time.time()
    assert got[("syncd_redis_up", ())] == 1
    assert got[("syncd_queue_depth", ())] == 1
    assert got[("syncd_bindings_waiting", ())] == 2  # alice (queued), bob (failed: put back)
    assert got[("syncd_binding_failed", _binding(REF))] == 0
    assert got[("syncd_binding_failed", _binding(MISSING))] == 1
    assert now - 60 < got[("syncd_last_success_timestamp_seconds", _binding(REF))] <= now
    assert ("syncd_last_success_timestamp_seconds", _binding(MISSING)) not in got
    assert 0 <= got[("syncd_sync_lag_seconds", _binding(REF))] < 60
    assert 0 <= got[("syncd_sync_lag_seconds", _binding(MISSING))] < 60  # since its request
    assert got[("syncd_dead_letters", _binding(REF))] == 1
    assert got[("syncd_dead_letters", _binding(MISSING))] == 0  # a missing calendar: no letter
    assert got[("syncd_open_conflicts", _binding(REF))] == 0
    assert got[("syncd_requests_total", (("code", "404"), ("side", "caldav")))] >= 1
    assert got[("syncd_requests_total", (("code", "207"), ("side", "caldav")))] >= 1
    assert got[("syncd_requests_total", (("code", "200"), ("side", "dingtalk")))] >= 1


async def test_metrics_and_status_without_redis(tmp_path: Path) -> None:
    """Redis unreachable: /metrics still answers with syncd_redis_up 0, /status is 503."""
    root = tmp_path / "cfg"
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: redis://127.0.0.1:{free_port()}/0\n")
    async with serve_webhook(load_config(root, {})) as base, aiohttp.ClientSession() as session:
        async with session.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            got = samples(await resp.text())
        async with session.get(f"{base}/status") as resp:
            assert resp.status == 503
            assert "Redis is unreachable" in await resp.text()
    assert got[("syncd_redis_up", ())] == 0
    assert ("syncd_queue_depth", ()) not in got


# --- the status page in a browser -----------------------------------------------------


class _Table(html.parser.HTMLParser):
    """Cells of every table row, the refresh meta tag, and whether any script exists."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.refresh: str | None = None
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "meta" and dict(attrs).get("http-equiv") == "refresh":
            self.refresh = dict(attrs).get("content")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


CHROMIUM = shutil.which("chromium")


def rendered(url: str) -> _Table:
    """The DOM headless Chromium builds for ``url``, parsed."""
    assert CHROMIUM, "chromium is not installed: run `make install` (Debian package chromium)"
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    table = _Table()
    table.feed(dom)
    return table


@RADICALE_ONLY
async def test_status_page_in_a_browser(
    spine: Spine, radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """Chromium shows one row per binding with its state and reason, refreshing every 10 s."""
    config = two_bindings(spine, radicale_server, tmp_path / "cfg", redis_url)
    for ref in (REF, MISSING):
        await queue.request_reconcile(spine.pool, ref, "poll")
    await spine.run_worker(config)
    async with serve_webhook(config) as base:
        page = await asyncio.to_thread(rendered, f"{base}/status")
    head, *body = page.rows
    assert head[:5] == ["Tenant", "Binding", "Kind", "State", "Reason"]
    by_binding = {row[1]: dict(zip(head, row, strict=True)) for row in body}
    assert sorted(by_binding) == ["alice-work", "bob-missing"]
    alice, bob = by_binding["alice-work"], by_binding["bob-missing"]
    assert (alice["State"], alice["Reason"], alice["Dead letters"]) == ("ok", "", "0")
    assert alice["Last success"].endswith("UTC")
    assert bob["State"] == "failed"
    assert bob["Reason"].startswith("calendar not found: http://127.0.0.1:")
    assert bob["Last success"] == "never"
    assert page.refresh == "10"
    assert page.scripts == 0


def test_status_page_escapes_every_value(tmp_path: Path) -> None:
    """A reason holding markup is shown as text in the browser, never run or parsed."""
    evil = '<script>document.title="owned"</script><b>bold</b>'
    row = Row("acme", "b&1", "caldav", "failed", evil, None, 12.0, 3, 1, True)
    page = tmp_path / "status.html"
    page.write_text(render_status([row], 4, time.time()))
    table = rendered(page.as_uri())
    assert table.scripts == 0
    assert table.rows[1][:5] == ["acme", "b&1", "caldav", "failed", evil]
    assert table.rows[1][6:] == ["12 s", "3", "1"]


@RADICALE_ONLY
@pytest.mark.usefixtures("syncd_reaper")
async def test_worker_listen_serves_metrics_and_status_but_no_callbacks(
    spine: Spine, tmp_path: Path, redis_url: str
) -> None:
    """``syncd worker --listen``: /metrics, /status and /healthz answer; callbacks do not."""
    root = write_fault_config(tmp_path / "cfg", spine.sandbox, spine.calendar, redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_syncd("worker", root, "--listen", f"127.0.0.1:{port}", log_dir=tmp_path)
    await proc.wait_logged("metrics_listening", within=20)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/metrics") as resp:
            got = samples(await resp.text())
        async with session.get(f"{base}/status") as resp:
            assert resp.status == 200
            assert "alice-work" in await resp.text()
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
        async with session.post(f"{base}/callbacks/acme", json={}) as resp:
            assert resp.status == 404
    assert got[("syncd_redis_up", ())] == 1
    assert got[("syncd_binding_failed", _binding(REF))] == 0
    proc.send(signal.SIGTERM)
    assert await proc.exited(within=40) == 0


def test_gauges_text_parses_back_with_awkward_labels() -> None:
    """The hand-written exposition is valid Prometheus text: quotes, backslashes and
    newlines in label values come back as they went in, and every gauge is declared."""
    odd = 'a"b\\c\nd'
    row = Row(odd, "b-1", "caldav", "failed", "why", 1.7e9, 3.5, 2, 1, True)
    got = samples(gauges_text([row], 7).decode())
    labels = (("binding", "b-1"), ("tenant", odd))
    assert got[("syncd_binding_failed", labels)] == 1
    assert got[("syncd_sync_lag_seconds", labels)] == 3.5
    assert got[("syncd_last_success_timestamp_seconds", labels)] == 1.7e9
    assert got[("syncd_queue_depth", ())] == 7
    names = {name for name, _ in got}
    assert names == set(SCRAPE_GAUGES)
