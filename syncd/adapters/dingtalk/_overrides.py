"""Writing a series' overrides (moved/edited occurrences) and cancelled occurrences to DingTalk.

DingTalk keeps an exception as its own event: the occurrence's instance id, patched (or
deleted, which cancels just that occurrence). The translation layer lists what the series
needs with ``exception_bodies``; here each recurrence id is matched to its instance by
ListInstances around it (one call per year of recurrence ids) and written — unless the
series already holds exactly that exception (``before``), so re-writing a series does not
re-patch every exception. An exception DingTalk holds but the event no longer has cannot
be reverted through the API; it is logged and left (the read-back shows it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import structlog

from syncd.adapters.dingtalk import _series
from syncd.adapters.dingtalk.client import DingTalkClient
from syncd.errors import TranslationError
from syncd.model import Event, When
from syncd.translate import (
    Context,
    as_dingtalk_keeps,
    event_from_dingtalk,
    exception_bodies,
    patch_body,
)
from syncd.translate._common import occurrence_of

log = structlog.get_logger(__name__)

Body = dict[str, Any]


async def apply_overrides(
    client: DingTalkClient,
    user: str,
    ctx: Context,
    series_id: str,
    event: Event,
    before: Event | None,
) -> int:
    """Write the exceptions ``event`` has and ``before`` lacks; returns how many were written."""
    todo = _todo(event, before, ctx)
    _log_unrevertable(event, before, series_id)
    if not todo:
        return 0
    ids = await instance_ids(client, user, ctx, series_id, [rid for rid, _ in todo])
    written = 0
    for rid, body in todo:
        instance = ids.get(_series.rid_key(rid))
        if instance is None:
            log.warning("dingtalk_exception_no_instance", series_id=series_id, rid=str(rid))
            continue
        if body is None:
            await client.delete_event(user, instance)
        else:
            await client.patch_event(user, instance, body)
        written += 1
    return written


def _todo(event: Event, before: Event | None, ctx: Context) -> list[tuple[When, Body | None]]:
    """``exception_bodies(event)`` less those ``before`` (DingTalk's copy) already holds.

    An override is compared as DingTalk keeps it *within its series* (the overrides of
    ``as_dingtalk_keeps(event)``): on its own it has no ``recurrence``, so predicting it
    alone would treat it as an occurrence without its series and drop its recurrence id.
    One that must be written is sent as a :func:`patch_body` against what its instance
    holds now (the exception, or else the series' occurrence), so fields syncd does not
    map stay as they are.
    """
    wanted = exception_bodies(event, ctx)
    if before is None or before.recurrence is None:
        return wanted
    cancelled = {_series.rid_key(d) for d in before.recurrence.exdates}
    held = _by_rid(before)
    kept = _by_rid(as_dingtalk_keeps(event, ctx))
    mine = _by_rid(event)
    todo: list[tuple[When, Body | None]] = []
    for rid, body in wanted:
        key = _series.rid_key(rid)
        if body is None:
            if key not in cancelled:
                todo.append((rid, None))
            continue
        have, want = held.get(key), kept.get(key)
        if have is not None and want is not None and have.fingerprint() == want.fingerprint():
            continue
        now = have or occurrence_of(dataclasses.replace(before, overrides=()), rid)
        target = dataclasses.replace(mine[key], recurrence=None)
        todo.append((rid, patch_body(dataclasses.replace(now, recurrence=None), target, ctx)))
    return todo


def _by_rid(series: Event) -> dict[str, Event]:
    """A series' overrides keyed by ``rid_key`` of their recurrence id."""
    return {_series.rid_key(o.recurrence_id): o for o in series.overrides if o.recurrence_id}


def _log_unrevertable(event: Event, before: Event | None, series_id: str) -> None:
    if before is None:
        return
    wanted = {_series.rid_key(o.recurrence_id) for o in event.overrides if o.recurrence_id}
    if event.recurrence is not None:
        wanted |= {_series.rid_key(d) for d in event.recurrence.exdates}
    held = {_series.rid_key(o.recurrence_id) for o in before.overrides if o.recurrence_id}
    if before.recurrence is not None:
        held |= {_series.rid_key(d) for d in before.recurrence.exdates}
    for key in sorted(held - wanted):
        log.warning("dingtalk_exception_unrevertable", series_id=series_id, rid=key)


async def instance_ids(
    client: DingTalkClient, user: str, ctx: Context, series_id: str, rids: Sequence[When]
) -> dict[str, str]:
    """Instance ids of the occurrences originally at ``rids``, keyed by ``rid_key``."""
    out: dict[str, str] = {}
    for low, high in _series.rid_windows(rids):
        for item in await client.list_instances(user, series_id, time_min=low, time_max=high):
            try:
                rid = event_from_dingtalk(item, [], ctx).recurrence_id
            except (TranslationError, ValueError, KeyError, TypeError) as exc:
                log.warning("dingtalk_instance_untranslatable", id=item.get("id"), error=str(exc))
                continue
            if rid is not None and item.get("id"):
                out[_series.rid_key(rid)] = str(item["id"])
    return out
