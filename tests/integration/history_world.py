"""The realistic-history harness: two bindings, real servers, the real worker, random users.

``History`` drives alice <-> Radicale and bob <-> Xandikos (both ``direction: both``)
through seeded random rounds of creates, edits (title, time, attendees incl. the other
user) and deletes on both sides. Some rounds hold an edit-vs-delete couple (one side
deletes an event while the other edits it); in some, one change lands *between a run's
reads and its first write* (:class:`Interleave`). Runs go through real arq burst workers
(rounds), or for the interleaved run through the same wiring and runner the worker task
uses. ``settle`` runs until a round writes nothing and then checks convergence.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import textwrap
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from arq.connections import ArqRedis
from redis import asyncio as aredis

from syncd import queue
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config
from syncd.model import BindingRef, Event
from syncd.reconcile import Report, reconcile
from syncd.store.redis import RedisStore
from syncd.store.tokens import TokenStore
from syncd.sync.ports import CalendarSide, Written
from syncd.worker.settings import create_worker
from syncd.worker.wiring import wire
from tests.fixtures.caldav_servers import PASSWORD, USERNAME, CalendarHandle
from tests.fixtures.sandbox import SandboxApi, SandboxHandle
from tests.integration.history_sides import (
    ALICE,
    BOB,
    CalDAVUser,
    DingTalkUser,
    Logical,
    number_of,
)

REFS = {ALICE: BindingRef("acme", "alice-work"), BOB: BindingRef("acme", "bob-work")}
Op = Callable[[], Awaitable[None]]
MAX_HELD = 3  # the deletion threshold the harness configures (max_count)


def write_config(root: Path, sandbox: SandboxHandle, urls: dict[str, str], redis_url: str) -> Path:
    """Tenant ``acme``: alice-work and bob-work, both ``direction: both``."""
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nlog: {{format: console}}\n")
    bindings = "".join(
        f"""
              - id: {ref.binding}
                dingtalk_user: {user}
                caldav: {{url: "{urls[user]}", username: {USERNAME}, password: {PASSWORD}}}
                direction: both
                deletion_threshold: {{max_count: {MAX_HELD}, max_ratio: 0.5}}"""
        for user, ref in REFS.items()
    )
    text = f"""\
            id: acme
            timezone: Asia/Shanghai
            dingtalk:
              api_base: {sandbox.url}
              app_key: {sandbox.app_key}
              app_secret: {sandbox.app_secret}
              callback: {{token: {sandbox.callback_token}, aes_key: {sandbox.aes_key}}}
              list_every: always  # no webhook here: DingTalk changes are found by listing
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
              - {{union_id: u-bob, email: bob@acme.example}}
              - {{union_id: u-carol, email: carol@acme.example}}
            bindings:{bindings}
            """
    (root / "tenants" / "acme.yaml").write_text(textwrap.dedent(text))
    return root


class Interleave:
    """A side whose first write (on either side of the run) first lets ``pending`` land.

    So a user's change happens after the run read both sides and before it writes: the
    interleaving that a plan made from stale reads must survive.
    """

    def __init__(self, inner: CalendarSide, pending: list[Op], gate: asyncio.Lock) -> None:
        self.inner, self.pending, self.gate, self.side = inner, pending, gate, inner.side

    async def _land(self) -> None:
        """Let the pending changes land; writes running at the same time wait for them."""
        async with self.gate:
            while self.pending:
                await self.pending.pop(0)()

    async def changes(self, cursor: str | None):  # type: ignore[no-untyped-def]
        return await self.inner.changes(cursor)

    async def create(self, event: Event) -> Written:
        await self._land()
        return await self.inner.create(event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        await self._land()
        return await self.inner.update(item_id, event, etag)

    async def delete(self, item_id: str, etag: str | None) -> None:
        await self._land()
        await self.inner.delete(item_id, etag)


@dataclass
class Figures:
    """What one history did and found."""

    events: int = 0
    operations: int = 0
    interleaved: int = 0
    edit_vs_delete: int = 0
    held_deletions: int = 0
    duplicates_after_wipe: dict[str, int] = field(default_factory=dict)
    writes_after_wipe: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class History:
    """The two users, the running parts, and the seeded random source."""

    rng: random.Random
    config: Config
    config_dir: Path
    sandbox: SandboxHandle
    api: SandboxApi
    calendars: dict[str, CalendarHandle]
    pool: ArqRedis
    redis_url: str
    together: bool = False
    figures: Figures = field(default_factory=Figures)
    logical: dict[int, Logical] = field(default_factory=dict)
    expect: list[tuple[str, int, str, str]] = field(default_factory=list)  # user, n, title, why
    busy: set[int] = field(default_factory=set)  # events no other change may touch this round

    def __post_init__(self) -> None:
        self.dt = {u: DingTalkUser(u, self.api, self.sandbox) for u in REFS}
        self.dav = {u: CalDAVUser(u, self.calendars[u]) for u in REFS}

    # --- runs ---------------------------------------------------------------------------

    async def round(self) -> None:
        """Each binding reconciled by a burst worker in turn, as a poll of each would
        (one after the other, so a seed replays the same history; with ``together`` both
        in one worker at once, as in production, where timing decides the interleaving)."""
        batches = [list(REFS.values())] if self.together else [[r] for r in REFS.values()]
        for refs in batches:
            for ref in refs:
                await queue.request_reconcile(self.pool, ref, "poll")
            worker = create_worker(self.config, burst=True, poll=False)
            try:
                await worker.main()
            finally:
                await worker.close()

    def writes(self) -> Counter[str]:
        """Write requests so far: DingTalk API writes, CalDAV PUT/DELETE per calendar."""
        stats = self.sandbox.sandbox.stats()["requests"]
        out: Counter[str] = Counter()
        out["dingtalk"] = sum(
            n
            for op, n in stats.items()
            if op.startswith(("Create", "Patch", "Delete", "Add", "Remove", "Respond"))
        )
        for user, cal in self.calendars.items():
            out[f"caldav:{user}"] = sum(
                1 for m, _ in cal.settled_requests() if m in {"PUT", "DELETE"}
            )
        return out

    async def settle(self, label: str) -> None:
        """Rounds until one writes nothing (at most 8), then check every invariant."""
        for _ in range(8):
            before = self.writes()
            await self.round()
            if self.writes() == before:
                break
        else:
            self.figures.problems.append(f"{label}: still writing after 8 rounds")
        self.check(label)

    async def interleaved(self, user: str, pending: list[Op]) -> Report:
        """One run of ``user``'s binding whose first write lets ``pending`` land first."""
        ref = REFS[user]
        redis = aredis.Redis.from_url(self.redis_url)
        try:
            async with (
                aiohttp.ClientSession() as session,
                wire(self.config, ref, session, TokenCache(TokenStore(redis))) as w,
            ):
                gate = asyncio.Lock()
                report = await reconcile(
                    ref,
                    Interleave(w.dingtalk, pending, gate),
                    Interleave(w.other, pending, gate),
                    RedisStore(redis),
                    w.policy,
                )
        finally:
            await redis.aclose()
        for op in pending:  # the run wrote nothing: the change lands now
            await op()
        pending.clear()
        return report

    async def wipe_and_full(self) -> dict[str, str]:
        """FLUSHDB, then ``syncd sync --full`` of each binding; its summary line per binding."""
        redis = aredis.Redis.from_url(self.redis_url)
        await redis.flushdb()
        await redis.aclose()
        lines: dict[str, str] = {}
        for user, ref in REFS.items():
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "syncd"), "sync", "--debug",
                "--config", str(self.config_dir), ref.tenant, ref.binding, "--full",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            text = out.decode()
            assert proc.returncode == 0, (text, err.decode()[-2000:])
            lines[user] = next(line for line in text.splitlines() if line.startswith(str(ref)))
            self.figures.problems += [
                f"full run of {ref}: {line.strip()}"
                for line in err.decode().splitlines()
                if "applied" in line and re.search(r"action=.(create|update|delete|conflict)", line)
            ]
        return lines

    # --- checks -------------------------------------------------------------------------

    def check(self, label: str) -> None:
        """Both sides of each binding hold the same events, once each; edits won."""
        for user in REFS:
            d = Counter(self.dt[user].listing())
            c = Counter(self.dav[user].listing())
            if d != c:
                self.figures.problems.append(
                    f"{label}: {user} differs: only DingTalk {sorted(t for t, *_ in d - c)}, "
                    f"only CalDAV {sorted(t for t, *_ in c - d)}"
                )
            for side, keys in (("dingtalk", d), ("caldav", c)):
                numbers = Counter(number_of(t) for t, *_ in keys.elements())
                dup = sorted(n for n, k in numbers.items() if k > 1)
                if dup:
                    self.figures.problems.append(f"{label}: {user} {side} duplicates E{dup}")
        for user, n, title, why in self.expect:
            for side, keys in (
                ("dingtalk", self.dt[user].listing()),
                ("caldav", self.dav[user].listing()),
            ):
                if title not in {t for t, *_ in keys}:
                    self.figures.problems.append(
                        f"{label}: edit-vs-delete E{n} lost on {user}'s {side} "
                        f"(want {title!r}; {why})"
                    )
        self.expect.clear()
        self.busy.clear()

    def duplicates(self) -> dict[str, int]:
        """Copies beyond the first of each logical event, per user and side."""
        out: dict[str, int] = {}
        for user in REFS:
            for side, keys in (
                ("dingtalk", self.dt[user].listing()),
                ("caldav", self.dav[user].listing()),
            ):
                numbers = Counter(number_of(t) for t, *_ in keys)
                out[f"{user}:{side}"] = sum(k - 1 for k in numbers.values())
        return out

    def held_titles(self) -> dict[str, set[str]]:
        """Every title on every side, per user and side."""
        return {
            f"{u}:{s}": {t for t, *_ in (self.dt[u] if s == "dingtalk" else self.dav[u]).listing()}
            for u in REFS
            for s in ("dingtalk", "caldav")
        }


def titles_of(text: str) -> list[str]:
    """SUMMARY values of an iCalendar text (for messages)."""
    return re.findall(r"^SUMMARY:(.*)$", text, flags=re.M)
