"""The imported DingTalk directory of a tenant, cached in Redis (keys in :mod:`keys`).

Only a good import is ever written; a failed one leaves the last good directory in place.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.exceptions import RedisError

from syncd.errors import StoreUnavailable
from syncd.model import OrgDirectory
from syncd.store.keys import DIRECTORY, DIRECTORY_DUE, tenant_key


async def load_directory(redis: Redis, tenant: str) -> OrgDirectory | None:
    """The last good import of ``tenant``, or None if there never was one."""
    try:
        raw = await redis.get(tenant_key(tenant, DIRECTORY))
    except RedisError as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
    if raw is None:
        return None
    return OrgDirectory.from_dict(json.loads(raw))


async def save_directory(redis: Redis, tenant: str, directory: OrgDirectory) -> None:
    """Keep ``directory`` as the tenant's last good import."""
    try:
        await redis.set(tenant_key(tenant, DIRECTORY), json.dumps(directory.as_dict()))
    except RedisError as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc


async def claim_import(redis: Redis, tenant: str, seconds: float) -> bool:
    """True for the one caller (fleet-wide) whose turn it is to import; next turn in
    ``seconds``."""
    try:
        claimed = await redis.set(
            tenant_key(tenant, DIRECTORY_DUE), "1", nx=True, px=max(1, int(seconds * 1000))
        )
    except RedisError as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
    return bool(claimed)


async def retry_import_in(redis: Redis, tenant: str, seconds: float) -> None:
    """Make the next import due in ``seconds`` (sooner than ``refresh`` after a failure)."""
    try:
        await redis.set(tenant_key(tenant, DIRECTORY_DUE), "1", px=max(1, int(seconds * 1000)))
    except RedisError as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
