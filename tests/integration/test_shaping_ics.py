"""Filters and transforms on an ICS feed binding: the feed server, a real arq worker, the
DingTalk sandbox. Copies in DingTalk carry the prefix; excluded and all-day feed events
never reach DingTalk; a feed event renamed to match the filter loses its DingTalk copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq.connections import create_pool

from syncd import queue
from syncd.config import load_config
from syncd.store.redis import RedisStore
from tests.fixtures.feed_server import FeedServer, vevent
from tests.fixtures.sandbox import SandboxHandle
from tests.integration.test_ics_feed import ALL_DAY, Rig, write_config

SHAPING = """\
    transform: {summary_prefix: "[Feed] "}
    filter: {skip_all_day: true, exclude_summary: ["^Bravo"]}
"""


@pytest.fixture
async def shaped_rig(
    tmp_path: Path, sandbox: SandboxHandle, feed_server: FeedServer, redis_url: str
) -> AsyncIterator[Rig]:
    """The ICS rig with the binding's prefix and filter."""
    root = write_config(tmp_path / "config", sandbox, feed_server.feed_url, redis_url)
    tenant = root / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text() + SHAPING)
    pool = await create_pool(queue.redis_settings(redis_url))
    yield Rig(load_config(root, {}), sandbox, feed_server, pool, RedisStore(pool), None)  # type: ignore[arg-type]
    await pool.aclose()


async def step(rig: Rig) -> int:
    """One due refresh through the worker; the DingTalk writes it took."""
    before = rig.writes()
    await rig.refresh()
    return rig.writes() - before


async def test_feed_copies_are_marked_and_filtered(shaped_rig: Rig) -> None:
    """Alpha arrives as "[Feed] Alpha" (1 write); Bravo and the all-day holiday never do;
    an idle refresh writes nothing; an edit patches once; renamed to "Bravo 2" its DingTalk
    copy is deleted (1 write); renamed back it is created again (1 write)."""
    rig = shaped_rig
    rig.feed.events = {
        "a": vevent("a", "Alpha", "20270201T020000Z"),
        "b": vevent("b", "Bravo", "20270202T020000Z"),
        "holiday": ALL_DAY,
    }
    assert await step(rig) == 1
    assert sorted(rig.events().values()) == ["[Feed] Alpha"]
    assert await step(rig) == 0

    rig.feed.events["a"] = vevent("a", "Alpha 2", "20270201T020000Z")
    assert await step(rig) == 1
    assert sorted(rig.events().values()) == ["[Feed] Alpha 2"]

    rig.feed.events["a"] = vevent("a", "Bravo 2", "20270201T020000Z")
    assert await step(rig) == 1
    assert rig.events() == {}
    rig.feed.events["a"] = vevent("a", "Alpha 3", "20270201T020000Z")
    assert await step(rig) == 1
    assert sorted(rig.events().values()) == ["[Feed] Alpha 3"]
    assert await step(rig) == 0
