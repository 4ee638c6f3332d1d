"""A CalDAV binding's WebDAV-Push subscription record (one hash per binding).

Fields: ``token`` (the secret last path segment of the binding's push resource, kept
across renewals so the URL stays the same), ``url`` (the collection it was registered
for), ``renew_at`` (Unix time the workers register it again: half-way to its expiry, or
after a failure or a server without WebDAV-Push), ``expires`` and ``location``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from redis.asyncio import Redis

from syncd.model import BindingRef
from syncd.store import keys
from syncd.store.guard import awaited, redis_errors


@dataclass(frozen=True, slots=True)
class PushRecord:
    """What Redis holds for one binding (empty strings / 0.0 when unset)."""

    token: str = ""
    url: str = ""
    renew_at: float = 0.0
    expires: float = 0.0


def _text(raw: dict[bytes | str, bytes | str], name: str) -> str:
    value = raw.get(name.encode()) or raw.get(name) or ""
    return value.decode() if isinstance(value, bytes) else value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


READ_CHUNK = 500
"""Records read in one pipelined round trip by :func:`read_many`."""


def _record(raw: dict[bytes | str, bytes | str]) -> PushRecord:
    return PushRecord(
        token=_text(raw, "token"),
        url=_text(raw, "url"),
        renew_at=_number(_text(raw, "renew_at")),
        expires=_number(_text(raw, "expires")),
    )


async def read(redis: Redis, ref: BindingRef) -> PushRecord:
    """The binding's record (all defaults if it has none)."""
    with redis_errors("webdav_push_read"):
        raw = await awaited(redis.hgetall(keys.binding_key(ref, keys.WEBDAV_PUSH)))
    return _record(raw)


async def read_many(redis: Redis, refs: list[BindingRef]) -> list[PushRecord]:
    """The records of ``refs``, in order, :data:`READ_CHUNK` per round trip."""
    out: list[PushRecord] = []
    for start in range(0, len(refs), READ_CHUNK):
        pipe = redis.pipeline(transaction=False)
        for ref in refs[start : start + READ_CHUNK]:
            pipe.hgetall(keys.binding_key(ref, keys.WEBDAV_PUSH))
        with redis_errors("webdav_push_read"):
            out += [_record(raw) for raw in await pipe.execute()]
    return out


async def write(redis: Redis, ref: BindingRef, **fields: str | float) -> None:
    """Set ``fields`` of the binding's record (the others stay)."""
    mapping = {name: str(value) for name, value in fields.items()}
    with redis_errors("webdav_push_write"):
        await awaited(redis.hset(keys.binding_key(ref, keys.WEBDAV_PUSH), mapping=mapping))


async def token_matches(redis: Redis, ref: BindingRef, token: str) -> bool:
    """Whether ``token`` is the binding's push token (compared in constant time)."""
    with redis_errors("webdav_push_token"):
        stored = await awaited(redis.hget(keys.binding_key(ref, keys.WEBDAV_PUSH), "token"))
    if not stored:
        return False
    known = stored.decode() if isinstance(stored, bytes) else str(stored)
    return hmac.compare_digest(known.encode(), token.encode())
