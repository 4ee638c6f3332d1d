"""The workers keep a WebDAV-Push subscription for every CalDAV binding whose server offers it.

Only with ``webdav_push`` configured (:class:`syncd.config.WebDavPush`). A cron tick
(every :data:`TICK_SECONDS`, one worker at a time) looks at the bindings due: each has a
record in Redis (:mod:`syncd.store.webdav_push`) saying when to register again. A binding
is due when it has none, when its CalDAV URL changed, or at its ``renew_at``: half-way to
the expiry the server granted, :data:`FAILED_RETRY_S` after a failed registration, or
:data:`UNSUPPORTED_RETRY_S` after finding a server without WebDAV-Push. The push token
(the secret last segment of the push resource URL) is stored before the registration and
kept across renewals, so the server keeps one subscription per binding.

A failure is one log line and one metric; the binding's polls carry on as before.
Each worker remembers when it next needs to look at each binding, so an idle tick reads
nothing from Redis; a new configuration (start, reload) makes it look at every binding.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import structlog
from redis.asyncio import Redis

from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import CalDAVSource, Config, WebDavPush
from syncd.errors import SourceError, StoreError
from syncd.model import BindingRef
from syncd.observability import WEBDAV_PUSH_REGISTRATIONS
from syncd.store import webdav_push as record

log = structlog.get_logger(__name__)

TICK_SECONDS = 5
"""How often the subscription cron runs."""
FAILED_RETRY_S = 300.0
"""After a failed registration (server down, refused): try again this much later."""
UNSUPPORTED_RETRY_S = 3600.0
"""After finding that the server does not offer WebDAV-Push: look again this much later."""
MAX_PER_TICK = 20
"""Registrations one tick starts at most (the rest stay due for the next ticks)."""
IN_FLIGHT = 4
"""Registrations one tick runs at once."""
ROUTE = "/webdav-push/{tenant}/{binding}/{token}"
"""syncd serve's route for push messages (:mod:`syncd.webhook.push`)."""


def push_resource(public_url: str, ref: BindingRef, token: str) -> str:
    """The URL the CalDAV server POSTs a message to when ``ref``'s calendar changes."""
    path = ROUTE.format(
        tenant=quote(ref.tenant, safe=""), binding=quote(ref.binding, safe=""), token=token
    )
    return public_url + path


@dataclass(eq=False)
class PushKeeper:
    """Per worker process: when each binding needs looking at next (Unix time)."""

    config: Config | None = None
    next_check: dict[BindingRef, float] = field(default_factory=dict)

    def due(self, config: Config, now: float) -> list[tuple[BindingRef, CalDAVSource]]:
        """The CalDAV bindings to look at now (all of them on a new configuration)."""
        if config is not self.config:
            self.config, self.next_check = config, {}
        due = []
        for tenant, binding in config.bindings():
            ref = BindingRef(tenant.id, binding.id)
            if binding.caldav is not None and self.next_check.get(ref, 0.0) <= now:
                due.append((ref, binding.caldav))
        return due


async def keep_due(redis: Redis, keeper: PushKeeper, config: Config) -> int:
    """Register (or renew) the subscriptions due; how many registrations were tried.

    The records of the bindings due are read in pipelined round trips; those still fresh
    only move their next look; at most :data:`MAX_PER_TICK` are registered (the rest stay
    due for the next ticks).
    """
    push = config.settings.webdav_push
    if push is None:
        return 0
    now = time.time()
    due = keeper.due(config, now)
    try:
        held = await record.read_many(redis, [ref for ref, _ in due])
    except StoreError as exc:
        log.warning("webdav_push_not_stored", error=str(exc))
        return 0
    todo = []
    for (ref, dav), found in zip(due, held, strict=True):
        if _fresh(found, dav, now):
            keeper.next_check[ref] = found.renew_at
        else:
            todo.append((ref, dav, found))
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(ref: BindingRef, dav: CalDAVSource, found: record.PushRecord) -> None:
        async with gate:
            keeper.next_check[ref] = await keep_one(redis, ref, dav, push, now, found)

    await asyncio.gather(*(one(*item) for item in todo[:MAX_PER_TICK]))
    return len(todo[:MAX_PER_TICK])


def _fresh(held: record.PushRecord, dav: CalDAVSource, now: float) -> bool:
    """Registered (or given up on) for this URL, and not due again yet."""
    return held.url == dav.url and held.renew_at > now


async def keep_one(
    redis: Redis,
    ref: BindingRef,
    dav: CalDAVSource,
    push: WebDavPush,
    now: float,
    held: record.PushRecord | None = None,
) -> float:
    """Register ``ref``'s subscription if it is due (``held``: its record, read if not
    given); when to look at it next."""
    try:
        if held is None:
            held = await record.read(redis, ref)
        if _fresh(held, dav, now):
            return held.renew_at
        token = held.token or secrets.token_urlsafe(24)
        if not held.token:  # stored first: a message may arrive before the server answers
            await record.write(redis, ref, token=token)
        return await _register(redis, ref, dav, push, token, now)
    except StoreError as exc:
        where = {"tenant": ref.tenant, "binding": ref.binding}
        log.warning("webdav_push_not_stored", **where, error=str(exc))
        return now + TICK_SECONDS


async def _register(
    redis: Redis, ref: BindingRef, dav: CalDAVSource, push: WebDavPush, token: str, now: float
) -> float:
    where = {"tenant": ref.tenant, "binding": ref.binding}
    password = dav.password.get_secret_value() if dav.password else None
    try:
        async with CalDAVClient(dav.url, dav.username, password, timeout=dav.timeout) as client:
            got = await client.subscribe_push(
                push_resource(push.public_url, ref, token), now + push.lifetime
            )
    except SourceError as exc:
        WEBDAV_PUSH_REGISTRATIONS.labels(ref.tenant, "failed").inc()
        log.warning("webdav_push_register_failed", **where, error=str(exc))
        return await _later(redis, ref, dav, now + FAILED_RETRY_S)
    if got is None:
        WEBDAV_PUSH_REGISTRATIONS.labels(ref.tenant, "unsupported").inc()
        log.info("webdav_push_unsupported", **where)
        return await _later(redis, ref, dav, now + UNSUPPORTED_RETRY_S)
    renew_at = now + max(float(TICK_SECONDS), (got.expires - now) / 2)
    await record.write(
        redis, ref, url=dav.url, renew_at=renew_at, expires=got.expires, location=got.location or ""
    )
    WEBDAV_PUSH_REGISTRATIONS.labels(ref.tenant, "renewed" if got.renewed else "registered").inc()
    log.info("webdav_push_registered", **where, expires=got.expires, renewed=got.renewed)
    return renew_at


async def _later(redis: Redis, ref: BindingRef, dav: CalDAVSource, at: float) -> float:
    await record.write(redis, ref, url=dav.url, renew_at=at)
    return at
