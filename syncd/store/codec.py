"""JSON text of what the Redis store keeps: pairs and conflict records.

Events go through :func:`syncd.model.to_jsonable` / :func:`~syncd.model.from_jsonable`,
so a stored base snapshot reads back equal (and with the same fingerprint). Text that
does not decode raises :class:`~syncd.errors.StoreError` naming what was broken.
"""

from __future__ import annotations

import json
from typing import Any

from syncd.errors import StoreError
from syncd.model import Event, PairState, Side, from_jsonable, to_jsonable
from syncd.sync.ports import ConflictRecord


def dumps(value: Any) -> str:
    """Compact, stable JSON (values JSON cannot hold are kept as their ``str``)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _event(data: Any) -> Event | None:
    return from_jsonable(data) if data is not None else None


def _jsonable(event: Event | None) -> dict[str, Any] | None:
    return to_jsonable(event) if event is not None else None


def pair_to_json(pair: PairState) -> str:
    """The stored form of a pair."""
    return dumps(
        {
            "uid": pair.uid,
            "dingtalk_id": pair.dingtalk_id,
            "caldav_href": pair.caldav_href,
            "dingtalk_fp": pair.dingtalk_fp,
            "caldav_fp": pair.caldav_fp,
            "caldav_etag": pair.caldav_etag,
            "dingtalk_etag": pair.dingtalk_etag,
            "base": _jsonable(pair.base),
            "origin": pair.origin.value,
            "dingtalk_held": _jsonable(pair.dingtalk_held),
            "caldav_held": _jsonable(pair.caldav_held),
        }
    )


def pair_from_json(text: str | bytes) -> PairState:
    """Inverse of :func:`pair_to_json`; raises ``StoreError`` on broken text."""
    try:
        data = json.loads(text)
        return PairState(
            uid=data["uid"],
            dingtalk_id=data["dingtalk_id"],
            caldav_href=data["caldav_href"],
            dingtalk_fp=data["dingtalk_fp"],
            caldav_fp=data["caldav_fp"],
            caldav_etag=data["caldav_etag"],
            base=_event(data["base"]),
            origin=Side(data["origin"]),
            dingtalk_held=_event(data.get("dingtalk_held")),
            caldav_held=_event(data.get("caldav_held")),
            dingtalk_etag=data.get("dingtalk_etag"),
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StoreError(f"stored pair is not readable: {exc!r}") from exc


def conflict_to_json(record: ConflictRecord) -> str:
    """The stored form of a conflict record."""
    return dumps(
        {
            "uid": record.uid,
            "fields": list(record.fields),
            "dingtalk": to_jsonable(record.dingtalk),
            "caldav": to_jsonable(record.caldav),
            "base": to_jsonable(record.base) if record.base is not None else None,
            "winner": record.winner.value,
            "decided_at": record.decided_at,
        }
    )


def conflict_from_json(text: str | bytes) -> ConflictRecord:
    """Inverse of :func:`conflict_to_json`; raises ``StoreError`` on broken text."""
    try:
        data = json.loads(text)
        return ConflictRecord(
            uid=data["uid"],
            fields=tuple(data["fields"]),
            dingtalk=from_jsonable(data["dingtalk"]),
            caldav=from_jsonable(data["caldav"]),
            base=_event(data["base"]),
            winner=Side(data["winner"]),
            decided_at=data["decided_at"],
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StoreError(f"stored conflict is not readable: {exc!r}") from exc
