"""The configuration as workers and the web serve it: each tenant's binding templates
expanded over its last imported DingTalk directory (cached in Redis by the workers'
directory refresh, :mod:`syncd.worker.directory`).

Here rather than in the worker so that the webhook, Stream intake and ``/status`` can use it
without importing the DingTalk adapters.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from redis.asyncio import Redis

from syncd.config import Config, Tenant
from syncd.config.templates import expand
from syncd.errors import StoreUnavailable
from syncd.store.directory import load_directory

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
