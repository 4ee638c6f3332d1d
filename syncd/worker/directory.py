"""Directory refresh: import each ``directory: {source: dingtalk}`` tenant's directory
every ``refresh`` (one worker of the fleet per turn), cache it in Redis, and rebuild the
configuration the worker serves (static bindings + the templates' bindings).

A failed or empty import keeps the last good directory: one ``directory_import_failed``
log line, ``syncd_directory_imports_total{outcome="failed"}``, and another try after
:data:`RETRY_SECONDS` (or ``refresh`` if shorter). An organisation never shrinks to no one
because of a failed call.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import structlog
from redis.asyncio import Redis

from syncd.adapters.dingtalk.contacts import ContactsClient, import_directory
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config, Tenant
from syncd.config.templates import expand_config
from syncd.errors import SourceError, StoreUnavailable
from syncd.model import OrgDirectory
from syncd.observability import DIRECTORY_IMPORTS, DIRECTORY_USERS
from syncd.store.directory import claim_import, load_directory, retry_import_in, save_directory
from syncd.store.ratelimit import RequestPace
from syncd.worker.context import swap_directories, worker_context

log = structlog.get_logger(__name__)

RETRY_SECONDS = 60.0


def importing(config: Config) -> list[Tenant]:
    """The tenants whose directory comes from DingTalk."""
    return [t for t in config.tenants.values() if t.directory_import is not None]


async def import_now(
    redis: Redis,
    session: aiohttp.ClientSession,
    tokens: TokenCache,
    tenant: Tenant,
    pace: RequestPace | None = None,
) -> OrgDirectory | None:
    """Import ``tenant``'s directory now; the new one, or None (the last good one stays).

    With ``pace`` its requests share the app's ``dingtalk.qps`` with every calendar call.
    """
    app = tenant.dingtalk
    client = ContactsClient(
        session,
        app.api_base,
        app.app_key,
        app.app_secret.get_secret_value(),
        tokens,
        pace=pace.for_app(app.app_key, app.qps) if pace is not None else None,
    )
    started = time.monotonic()
    try:
        org, skipped = await import_directory(client)
    except SourceError as exc:
        _failed(tenant, str(exc))
        return None
    if not org.users:
        _failed(tenant, "DingTalk listed no user at all")
        return None
    await save_directory(redis, tenant.id, org)
    DIRECTORY_IMPORTS.labels(tenant.id, "imported").inc()
    DIRECTORY_USERS.labels(tenant.id).set(len(org.users))
    log.info(
        "directory_imported",
        tenant=tenant.id,
        users=len(org.users),
        departments=len(org.parents) + 1,
        skipped=len(skipped),
        requests=sum(client.requests.values()),
        seconds=round(time.monotonic() - started, 3),
    )
    for reason in skipped:
        log.info("directory_user_skipped", tenant=tenant.id, reason=reason)
    return org


def _failed(tenant: Tenant, reason: str) -> None:
    DIRECTORY_IMPORTS.labels(tenant.id, "failed").inc()
    log.warning("directory_import_failed", tenant=tenant.id, error=reason, kept="last good")


async def refresh_due(
    redis: Redis,
    session: aiohttp.ClientSession,
    tokens: TokenCache,
    config: Config,
    pace: RequestPace | None = None,
) -> dict[str, OrgDirectory | None]:
    """Import every tenant whose turn it is; every importing tenant's last good directory."""
    found: dict[str, OrgDirectory | None] = {}
    for tenant in importing(config):
        settings = tenant.directory_import
        assert settings is not None
        fresh = None
        if await claim_import(redis, tenant.id, settings.refresh):
            fresh = await import_now(redis, session, tokens, tenant, pace)
            if fresh is None:
                await retry_import_in(redis, tenant.id, min(RETRY_SECONDS, settings.refresh))
        found[tenant.id] = fresh or await load_directory(redis, tenant.id)
    return found


async def refresh_directories(ctx: dict[str, Any]) -> int:
    """Cron: refresh what is due and serve the expanded configuration; its binding count."""
    shared = worker_context(ctx)
    base = shared.base_config or shared.config
    try:
        found = await refresh_due(shared.redis, shared.session, shared.tokens, base, shared.pace)
    except StoreUnavailable as exc:
        log.warning("directory_refresh_skipped", error=str(exc))
        return sum(1 for _ in shared.config.bindings())
    config, problems = expand_config(base, found)
    for problem in problems:
        log.warning("directory_template_problem", problem=problem)
    swap_directories(ctx, found, config)  # a config reload expands over these too
    return sum(1 for _ in config.bindings())
