"""Real-world corpora end to end: CalDAV → DingTalk (sandbox) → CalDAV, through the product.

Every calendar object resource of the .ics files shipped in the icalendar and
recurring-ical-events wheels (split per UID as in the translation corpus test) is PUT as-is
into Radicale calendar A; what Radicale refuses (it validates strictly: no UID, no DTSTART,
PERIOD values, ...) goes into Xandikos calendar X instead, which stores nearly anything, so
broken data really reaches syncd next to good data. Bindings ``src`` (A) and ``src-x`` (X)
mirror into u-alice's DingTalk calendar (``to_dingtalk``), binding ``dst`` mirrors that
DingTalk calendar into Radicale calendar B (``to_caldav``); the real webhook receives the
sandbox's callbacks and real arq workers run the reconciles. Each resource must then be in
B with the same occurrences over two years (recurring-ical-events as the oracle), summary,
location and description -- or differ only as ``dingtalk_warnings`` reports -- or be
explained: refused by both servers, unreadable (``caldav_item_untranslatable``) or
dead-lettered as unrepresentable, each with its reason. No job may fail, nothing may log
an error, and a second full round writes nothing.

The corpus is cut into chunks (fresh calendars and sandbox each) so that no chunk holds a
UID twice and Radicale's per-PUT cost, which grows with the collection, stays small.
"""

from __future__ import annotations

import collections
import functools
import textwrap
import warnings
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from arq.connections import ArqRedis, create_pool
from icalendar import Calendar
from structlog.testing import capture_logs

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import uid_for_href
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.store.redis import RedisStore
from syncd.translate import as_dingtalk_keeps, dingtalk_warnings, event_from_ical
from syncd.webhook.app import create_app
from syncd.worker.settings import create_worker
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import (
    PASSWORD,
    USERNAME,
    CalDAVServer,
    CalendarHandle,
    make_calendar,
)
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.spine import caldav_yaml
from tests.unit.test_translate_corpus import corpus_files, occurrences, resources
from tests.unit.test_translate_shapes import CTX

AUTH = (USERNAME, PASSWORD)  # the CalDAV test user (Xandikos ignores it)

CHUNKS = 12  # > the most copies of one UID in the corpus (10)
SRC, SRC_X, DST = BindingRef("acme", "src"), BindingRef("acme", "src-x"), BindingRef("acme", "dst")
# Wide enough for every corpus event (1997 onwards): a full DingTalk listing covers it all.
WINDOW = f"{{past: {(date.today() - date(1990, 1, 1)).days}d, future: 4000d}}"
TEXT_FIELDS = ("summary", "location", "description")
Logs = list[MutableMapping[str, Any]]  # what structlog.testing.capture_logs collects


@dataclass(frozen=True)
class Resource:
    """One calendar object resource of the corpus and its item name in calendar A."""

    label: str
    text: str
    uid: str | None  # None: no UID, or the file could not be split (for chunking only)
    name: str


def _uid(label: str) -> str | None:
    _, sep, uid = label.partition(":")
    return uid if sep and not uid.startswith("(no UID") else None


@functools.cache
def chunks() -> list[list[Resource]]:
    """The whole corpus spread over :data:`CHUNKS` groups, no UID twice in one group."""
    groups: list[list[Resource]] = [[] for _ in range(CHUNKS)]
    for n, (label, text) in enumerate(r for p in corpus_files() for r in resources(p)):
        uid = _uid(label)
        free = [g for g in groups if uid is None or all(r.uid != uid for r in g)]
        min(free, key=len).append(Resource(label, text, uid, f"r{n:04d}.ics"))
    return groups


def write_config(
    root: Path, sandbox: SandboxHandle, a: str, x: str, b: str, redis_url: str
) -> Config:
    """Tenant acme: ``src``/``src-x`` mirror ``a``/``x`` into DingTalk, ``dst`` it into ``b``."""
    (root / "tenants").mkdir(parents=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nlog: {{format: console}}\n")
    (root / "tenants" / "acme.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: acme
            timezone: {CTX.timezone}
            dingtalk:
              api_base: {sandbox.url}
              app_key: {sandbox.app_key}
              app_secret: {sandbox.app_secret}
              callback: {{token: {sandbox.callback_token}, aes_key: {sandbox.aes_key}}}
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
              - {{union_id: u-bob, email: bob@acme.example}}
              - {{union_id: u-carol, email: carol@acme.example}}
            bindings:
              - {{id: src, dingtalk_user: u-alice, caldav: {caldav_yaml(a, AUTH)},
                  direction: to_dingtalk, window: {WINDOW}}}
              - {{id: src-x, dingtalk_user: u-alice, caldav: {caldav_yaml(x, AUTH)},
                  direction: to_dingtalk, window: {WINDOW}}}
              - {{id: dst, dingtalk_user: u-alice, caldav: {caldav_yaml(b, AUTH)},
                  direction: to_caldav, window: {WINDOW}}}
            """
        )
    )
    return load_config(root, {})


@dataclass
class Stack:
    """The running product for one chunk, and the moves the test makes."""

    config: Config
    sandbox: SandboxHandle
    pool: ArqRedis
    sources: dict[BindingRef, CalendarHandle]  # src -> A (Radicale), src-x -> X (Xandikos)
    b: CalendarHandle
    jobs: collections.Counter[str] = field(default_factory=collections.Counter)

    async def settle(self, *, full: bool) -> None:
        """Ask for reconciles of every binding, then run workers until nothing is queued."""
        for ref in (*self.sources, DST):
            await queue.request_reconcile(self.pool, ref, "full" if full else "poll", full=full)
        for _ in range(10):
            await self.sandbox.sandbox.drain()
            if not await self.pool.zcard("arq:queue"):
                return
            worker = create_worker(self.config, burst=True, poll=False)
            try:
                await worker.main()
            finally:
                await worker.close()
            self.jobs.update(
                complete=worker.jobs_complete,
                failed=worker.jobs_failed,
                retried=worker.jobs_retried,
            )
        raise AssertionError("the queue did not settle")

    def writes(self) -> dict[str, int]:
        """Write requests so far: DingTalk operations, PUT/DELETE on each calendar."""
        stats = self.sandbox.sandbox.stats()["requests"]
        ops = ("Create", "Patch", "Delete", "Add", "Remove", "Respond")
        out = {"dingtalk": sum(n for op, n in stats.items() if op.startswith(ops))}
        for cal in (*self.sources.values(), self.b):
            out[cal.url] = sum(m in {"PUT", "DELETE"} for m, _ in cal.settled_requests())
        return out


async def listing(cal: CalendarHandle) -> tuple[dict[str, str], dict[str, str]]:
    """Every item of ``cal``: (href -> text, href -> why the server would not hand it over)."""
    async with CalDAVClient(cal.url, cal.username, cal.password) as client:
        found = await client.sync(None)
    return {i.href: i.text for i in found.items}, {u.href: u.reason for u in found.unreadable}


@pytest.fixture
async def stack(
    tmp_path: Path,
    sandbox: SandboxHandle,
    radicale_server: CalDAVServer,
    xandikos_server: CalDAVServer,
    redis_url: str,
) -> AsyncIterator[Stack]:
    """Sandbox, webhook, Redis and fresh calendars A, X and B, wired as src, src-x and dst."""
    a, x, b = (
        make_calendar(radicale_server),
        make_calendar(xandikos_server),
        make_calendar(radicale_server),
    )
    config = write_config(tmp_path / "config", sandbox, a.url, x.url, b.url, redis_url)
    pool = await create_pool(queue.redis_settings(redis_url))
    runner = web.AppRunner(create_app(config, pool))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sandbox.sandbox.set_callback(sandbox.app_key, f"http://127.0.0.1:{port}/callbacks/acme")
    yield Stack(config, sandbox, pool, {SRC: a, SRC_X: x}, b)
    await runner.cleanup()
    await pool.aclose()


@pytest.fixture(scope="module")
def totals(record_testsuite_property: Any) -> Iterator[collections.Counter[str]]:
    """Outcome counts over every chunk, recorded once for the whole suite."""
    counts: collections.Counter[str] = collections.Counter()
    yield counts
    record_testsuite_property("corpus_e2e_totals", dict(sorted(counts.items())))


# --- what each resource became -----------------------------------------------------------


def _category(error: str, message: str) -> str:
    kind = {"Unrepresentable": "unrepresentable", "BrokenCalendarData": "broken"}.get(error)
    assert kind is not None, f"not a reason: {error}: {message}"
    return f"{kind}: {message[:60]}"


def _text_fields(text: str) -> dict[str, str]:
    """Summary, location, description of the master as stored (its newest copy, by SEQUENCE)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = Calendar.from_ical(text).walk("VEVENT")
    masters = [e for e in events if "RECURRENCE-ID" not in e] or events
    master = max(reversed(masters), key=lambda e: int(e.get("SEQUENCE", 0)))
    return {f: str(master.get(f, "")) for f in TEXT_FIELDS}


# Which of dingtalk_warnings' notes speak of which field.
NOTE_WORDS = {
    "summary": ("title", "summary"),
    "location": ("location",),
    "description": ("description",),
}


def compare(a_text: str, b_text: str) -> str:
    """'identical', 'kept as reported: ...', or an AssertionError naming the difference.

    A text field may differ only as ``as_dingtalk_keeps`` predicts and a note of
    ``dingtalk_warnings`` about that field reports; occurrences may not differ at all.
    """
    event = event_from_ical(a_text, CTX)
    by_date = event.all_day
    theirs, ours = (
        occurrences(a_text, event.start, by_date),
        occurrences(b_text, event.start, by_date),
    )
    assert theirs == ours, f"occurrences differ: {sorted(theirs ^ ours)[:6]}"
    held, back = _text_fields(a_text), _text_fields(b_text)
    if held == back:
        return "identical"
    kept = as_dingtalk_keeps(event, CTX)
    changed = [f for f in TEXT_FIELDS if held[f] != back[f]]
    notes = [
        note
        for note in dingtalk_warnings(event, CTX)
        if any(word in note for f in changed for word in NOTE_WORDS[f])
    ]
    assert notes, f"{changed} changed silently: {held} became {back}"
    assert back == {f: getattr(kept, f) for f in TEXT_FIELDS}, f"{held} became {back}"
    return "kept as reported: " + "; ".join(notes)


@dataclass
class Evidence:
    """What the servers and the store hold after the run, and what the run logged."""

    held: dict[str, str]  # href in A or X -> text
    unreadable: dict[str, str]  # href in A or X -> why the server would not hand it over
    untranslatable: dict[str, tuple[str, str]]  # href -> (error class, message), from logs
    copied: dict[str, str]  # href in A or X -> DingTalk id (the src pairs)
    refused: dict[str, dict[str, Any]]  # uid -> dead letter of a src binding
    in_b: dict[str, str]  # DingTalk id -> text of its copy in B

    def outcome(self, href: str) -> str:
        """What became of the item at ``href``; AssertionError when nothing explains it."""
        assert href in self.held or href in self.unreadable, "accepted but not listed"
        if href in self.unreadable:
            return f"unreadable from the server: {self.unreadable[href][:60]}"
        if href in self.untranslatable:
            return _category(*self.untranslatable[href])
        if href not in self.copied:
            uid = event_from_ical(self.held[href], CTX).uid or uid_for_href(href)
            dead = self.refused.get(uid)
            assert dead is not None, "neither in DingTalk nor explained"
            return _category(dead["error"], dead["message"])
        copy = self.in_b.get(self.copied[href])
        assert copy is not None, f"DingTalk {self.copied[href]} has no copy in B"
        return compare(self.held[href], copy)


async def gather(stack: Stack, logs: Logs) -> Evidence:
    """Read every calendar, the store's pairs and dead letters, and the logged skips."""
    store = RedisStore(stack.pool)
    ev = Evidence({}, {}, {}, {}, {}, {})
    for ref, cal in stack.sources.items():
        held, unreadable = await listing(cal)
        ev.held.update(held)
        ev.unreadable.update(unreadable)
        ev.copied.update(
            {
                p.caldav_href or "": p.dingtalk_id or ""
                for p in (await store.load_pairs(ref)).values()
            }
        )
        ev.refused.update({d["uid"]: d for d in await store.list_dead_letters(ref)})
    in_b, unreadable = await listing(stack.b)
    assert not unreadable, unreadable
    assert not await store.list_dead_letters(DST), "a write to B failed"
    for pair in (await store.load_pairs(DST)).values():
        ev.in_b[pair.dingtalk_id or ""] = in_b[pair.caldav_href or ""]
    for entry in logs:
        if entry["event"] == "caldav_item_untranslatable":
            error, _, message = entry["error"].partition(": ")
            ev.untranslatable[entry["href"]] = (error, message)
    return ev


# --- the test ----------------------------------------------------------------------------


def upload(stack: Stack, chunk: list[Resource]) -> tuple[dict[str, Resource], list[str]]:
    """PUT every resource as-is into A, else into X: (href -> resource, refusals by both)."""
    accepted: dict[str, Resource] = {}
    refused = []
    for res in chunk:
        for cal in stack.sources.values():
            status, href = cal.put_raw(res.name, res.text)
            if status in {200, 201, 204}:
                accepted[href] = res
                break
            assert 400 <= status < 500, (res.label, status)
        else:
            refused.append(f"rejected by both servers: {status}")
    return accepted, refused


def _errors(logs: Logs) -> Logs:
    return [e for e in logs if e["log_level"] in {"error", "critical"}]


async def tally(
    stack: Stack, accepted: dict[str, Resource], refused: list[str], logs: Logs
) -> collections.Counter[str]:
    """Outcome counts of one chunk; AssertionError naming the first unexplained resource."""
    evidence = await gather(stack, logs)
    counts = collections.Counter(refused)
    for href, res in accepted.items():
        try:
            counts[evidence.outcome(href)] += 1
        except AssertionError as exc:
            raise AssertionError(f"{res.label} at {href}: {exc}") from exc
    counts["total"] = len(refused) + len(accepted)
    return counts


def _full_runs(logs: Logs) -> set[str]:
    return {e["binding"] for e in logs if e["event"] == "reconciled" and e["full"]}


@pytest.mark.corpus
@pytest.mark.parametrize("chunk", range(CHUNKS))
async def test_corpus_through_worker_and_servers(
    chunk: int, stack: Stack, totals: collections.Counter[str], record_property: Any
) -> None:
    """Each corpus event comes back unchanged through DingTalk, or is explained; no crash."""
    accepted, refused = upload(stack, chunks()[chunk])
    with capture_logs() as logs:
        await stack.settle(full=False)
    counts = await tally(stack, accepted, refused, logs)
    record_property("corpus_e2e_counts", dict(counts))
    totals.update(counts)
    assert not _errors(logs), _errors(logs)
    assert stack.jobs["failed"] == stack.jobs["retried"] == 0, stack.jobs
    assert counts["identical"] > 0.75 * counts["total"], counts

    # Round two: dst's mapping store is lost, and every binding re-lists both sides in
    # full. Each copy in B is found again by its UID (so the full DingTalk listing must
    # reach back to 1997: the window setting), and nothing is written anywhere.
    before = stack.writes()
    await RedisStore(stack.pool).wipe(DST)
    with capture_logs() as again:
        await stack.settle(full=True)
        await stack.settle(full=False)
    assert stack.writes() == before, "a second round wrote something"
    assert _full_runs(again) == {str(ref) for ref in (SRC, SRC_X, DST)}
    assert not _errors(again), _errors(again)
    assert stack.jobs["failed"] == 0, stack.jobs
    assert await tally(stack, accepted, refused, logs + again) == counts
