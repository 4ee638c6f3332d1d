"""Directory refresh: import each ``directory: {source: dingtalk}`` tenant's directory
every ``refresh`` (one worker of the fleet per turn), cache it in Redis, and rebuild the
configuration the worker serves (static bindings + the templates' bindings).

A failed or empty import keeps the last good directory: one ``directory.import_failed``
log line, ``syncd_directory_imports_total{outcome="failed"}``, and another try after
:data:`RETRY_SECONDS` (or ``refresh`` if shorter). An organisation never shrinks to no one
because of a failed call.
"""

from __future__ import annotations

import time
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import aiohttp
import structlog
from redis.asyncio import Redis

from syncd.adapters.dingtalk.contacts import ContactsClient, import_directory
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config, Tenant
from syncd.config.templates import expand, expand_config
from syncd.errors import SourceError, StoreUnavailable
from syncd.model import OrgDirectory
from syncd.observability import DIRECTORY_IMPORTS, DIRECTORY_USERS
from syncd.store.directory import claim_import, load_directory, retry_import_in, save_directory
from syncd.store.ratelimit import RequestPace
from syncd.worker.tasks import request_pace

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
        "directory.imported",
        tenant=tenant.id,
        users=len(org.users),
        departments=len(org.parents) + 1,
        skipped=len(skipped),
        requests=sum(client.requests.values()),
        seconds=round(time.monotonic() - started, 3),
    )
    for reason in skipped:
        log.info("directory.user_skipped", tenant=tenant.id, reason=reason)
    return org


def _failed(tenant: Tenant, reason: str) -> None:
    DIRECTORY_IMPORTS.labels(tenant.id, "failed").inc()
    log.warning("directory.import_failed", tenant=tenant.id, error=reason, kept="last good")


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
    base: Config = ctx["base_config"]
    try:
        pace = request_pace(ctx)
        found = await refresh_due(ctx["redis"], ctx["session"], ctx["tokens"], base, pace)
    except StoreUnavailable as exc:
        log.warning("directory.refresh_skipped", error=str(exc))
        return sum(1 for _ in ctx["config"].bindings())
    ctx["directories"] = found  # a config reload expands over these (supervisor)
    config, problems = expand_config(base, found)
    for problem in problems:
        log.warning("directory.template_problem", problem=problem)
    ctx["config"] = config
    return sum(1 for _ in config.bindings())


_SERVED: dict[str, tuple[int, float, Tenant]] = {}


async def served_tenant(redis: Redis, tenant: Tenant) -> Tenant:
    """``tenant`` as the workers serve it (its cached import and templates expanded); the
    expansion is kept in memory until the import or the tenant changes."""
    if tenant.directory_import is None and not tenant.binding_templates:
        return tenant
    org = await load_directory(redis, tenant.id) if tenant.directory_import else None
    stamp = org.fetched_at if org is not None else 0.0
    kept = _SERVED.get(tenant.id)
    if kept is not None and kept[0] == id(tenant) and kept[1] == stamp:
        return kept[2]
    served = expand(tenant, org).tenant
    _SERVED[tenant.id] = (id(tenant), stamp, served)
    return served


async def served_config(redis: Redis, config: Config) -> Config:
    """``config`` with every tenant as :func:`served_tenant` gives it (the web's /status and
    /metrics list template bindings too); unchanged when Redis cannot be read."""
    if not any(t.directory_import or t.binding_templates for t in config.tenants.values()):
        return config
    try:
        tenants = {tid: await served_tenant(redis, t) for tid, t in config.tenants.items()}
    except StoreUnavailable:
        return config
    return replace(config, tenants=MappingProxyType(tenants))
