"""The one-script snapshot behind /metrics and /status decides health as ``syncd status`` does.

Against a real Redis: bindings left in every state a run records (ok, partial, held,
failed, blocked, never run, dead letters only) give the same health and reason from the
snapshot (which reads only the status fields health needs) as from the whole stored
status; lag falls back from the last success to the oldest waiting request.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aredis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.gauges import lag_seconds, read_snapshot
from syncd.store.health import binding_health
from syncd.store.redis import RedisStore

AT = "2026-01-02T03:04:05+00:00"
STATES: dict[str, dict[str, Any]] = {
    "ok": {"state": "ok", "last_success": AT, "errors": [], "held_deletions": []},
    "partial": {
        "state": "partial",
        "errors": [
            {"uid": "u1", "error": "InvalidRequest", "message": "no"},
            {"uid": "u2", "error": "X", "message": "y"},
        ],
    },
    "held": {"state": "held", "held_deletions": ["a", "b"], "errors": []},
    "failed": {"state": "failed", "last_error": "calendar not found: http://x/"},
    "blocked": {"state": "blocked", "last_error": "SourceEmptied: everything gone"},
    "never": {},
    "letters": {"state": "ok", "last_success": AT},
}


async def test_snapshot_health_matches_the_full_status(redis_client: aredis.Redis) -> None:
    """Every state: same (health, reason) as binding_health on the whole stored status."""
    store = RedisStore(redis_client)
    refs = [BindingRef("acme", name) for name in STATES]
    for ref in refs:
        await store.set_status(ref, STATES[ref.binding])
    letters = BindingRef("acme", "letters")
    await store.add_dead_letter(letters, {"uid": "e1", "error": "Unrepresentable", "message": "m"})
    snap = await read_snapshot(redis_client, refs, time.time())
    for view in snap.bindings:
        full = await store.get_status(view.ref)
        stored = await store.list_dead_letters(view.ref)
        got = binding_health(view.status, [view.last_letter] if view.last_letter else [])
        assert got == binding_health(full, stored), view.ref
    by_name = {v.ref.binding: v for v in snap.bindings}
    assert binding_health(by_name["partial"].status, [])[1] == "u1: InvalidRequest: no (+1 more)"
    assert by_name["letters"].dead_letters == 1


async def test_lag_from_last_success_else_oldest_request(redis_client: aredis.Redis) -> None:
    """Lag: now - last success; never synced: now - the dirty mark's time; else unknown."""
    store = RedisStore(redis_client)
    synced, waiting, unknown = (BindingRef("acme", n) for n in ("synced", "waiting", "unknown"))
    await store.set_status(synced, {"state": "ok", "last_success": AT})
    await redis_client.set(keys.binding_key(waiting, keys.DIRTY), "1767000000.5")
    await redis_client.set(keys.binding_key(unknown, keys.DIRTY), "1")  # a mark of old
    now = 1767400000.0
    snap = await read_snapshot(redis_client, [synced, waiting, unknown], now)
    lags = [lag_seconds(v, now) for v in snap.bindings]
    assert lags[0] == now - 1767323045.0
    assert lags[1] == now - 1767000000.5
    assert lags[2] is None
    assert [v.dirty for v in snap.bindings] == [False, True, True]
    assert snap.queue_depth == 0
