"""JSON of what the stores keep: pairs, conflict records, run status, dead letters.

Events go through :func:`syncd.model.to_jsonable` / :func:`~syncd.model.from_jsonable`,
so a stored base snapshot reads back equal (and with the same fingerprint). Text that
does not decode raises :class:`~syncd.errors.StoreError` naming what was broken.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, fields
from datetime import date
from typing import Any, get_args

from syncd.errors import StoreError
from syncd.model import Event, PairState, Side, from_jsonable, to_jsonable
from syncd.sync.ports import ConflictRecord
from syncd.sync.records import NEVER_RUN, DeadLetter, DeadLetterKind, RunState, RunStatus


def dumps(value: Any) -> str:
    """Compact, stable JSON (values JSON cannot hold are kept as their ``str``)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _event(data: Any) -> Event | None:
    return from_jsonable(data) if data is not None else None


def _jsonable(event: Event | None) -> dict[str, Any] | None:
    return to_jsonable(event) if event is not None else None


# The stored form of a pair, version 2 (``"v":2``): short keys, absent when empty; events
# without the fields at their defaults (and without a uid equal to the pair's); what a side
# held only as the fields where it differs from ``base``. Version 1 (long keys, every field,
# every event in full) is still read: operators upgrade in place, and a pair is rewritten in
# version 2 the next time it is saved. The Lua scripts of :mod:`syncd.store.redis` read the
# ids of both versions (``dingtalk_id``/``d``, ``caldav_href``/``h``).
VERSION = 2
_DEFAULTS: dict[str, Any] = {
    f.name: to_jsonable(Event("", "", date(2000, 1, 1), date(2000, 1, 2)))[f.name]
    for f in fields(Event)
    if f.default is not MISSING
}
_SHORT = {
    "dingtalk_id": "d",
    "caldav_href": "h",
    "dingtalk_fp": "df",
    "caldav_fp": "cf",
    "caldav_etag": "ce",
    "dingtalk_etag": "de",
}


def _compact(event: Event, uid: str) -> dict[str, Any]:
    """An event's JSON form without default-valued fields, nor the uid when it is ``uid``."""
    full = to_jsonable(event)
    out = {k: v for k, v in full.items() if k not in _DEFAULTS or v != _DEFAULTS[k]}
    if out["uid"] == uid:
        del out["uid"]
    return out


def _expand(data: dict[str, Any], uid: str) -> dict[str, Any]:
    return {**_DEFAULTS, "uid": uid, **data}


def _held(held: Event | None, base: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a side held, as the fields differing from ``base`` (the full form without one)."""
    if held is None:
        return None
    full = to_jsonable(held)
    if base is None:
        return full
    return {k: v for k, v in full.items() if base.get(k) != v}


def pair_to_json(pair: PairState) -> str:
    """The stored form of a pair (version 2, see ``VERSION``)."""
    base = _jsonable(pair.base)
    data: dict[str, Any] = {"v": VERSION, "u": pair.uid, "o": pair.origin.value}
    for name, key in _SHORT.items():
        if getattr(pair, name) is not None:
            data[key] = getattr(pair, name)
    if pair.base is not None:
        data["b"] = _compact(pair.base, pair.uid)
    for key, held in (("dh", pair.dingtalk_held), ("ch", pair.caldav_held)):
        delta = _held(held, base)
        if delta is not None:
            data[key] = delta
    return dumps(data)


def pair_from_json(text: str | bytes) -> PairState:
    """Inverse of :func:`pair_to_json`, reading both versions; raises ``StoreError`` on
    broken text."""
    try:
        data = json.loads(text)
        return _pair_v2(data) if data.get("v") == VERSION else _pair_v1(data)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise StoreError(f"stored pair is not readable: {exc!r}") from exc


def _pair_v2(data: dict[str, Any]) -> PairState:
    uid = data["u"]
    base = _expand(data["b"], uid) if "b" in data else None

    def held(key: str) -> Event | None:
        if key not in data:
            return None
        return from_jsonable({**base, **data[key]} if base is not None else data[key])

    return PairState(
        uid=uid,
        base=from_jsonable(base) if base is not None else None,
        origin=Side(data["o"]),
        dingtalk_held=held("dh"),
        caldav_held=held("ch"),
        **{name: data.get(key) for name, key in _SHORT.items()},
    )


def _pair_v1(data: dict[str, Any]) -> PairState:
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


# --- run status: one stored field per record field, each JSON ------------------------------

_STATUS_FIELDS = tuple(f.name for f in fields(RunStatus))


def _plain(value: Any) -> Any:
    """Tuples and mappings of a record as JSON lists and dicts."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def status_fields(status: RunStatus) -> dict[str, Any]:
    """The fields a run records (those not None; never the ``never-run`` state), as JSON."""
    values = {name: getattr(status, name) for name in _STATUS_FIELDS}
    return {
        name: _plain(value)
        for name, value in values.items()
        if value is not None and value != NEVER_RUN
    }


def status_from_fields(stored: Mapping[str, Any]) -> RunStatus:
    """Inverse of :func:`status_fields` (unknown fields are ignored); ``StoreError`` if broken."""
    known = {name: stored[name] for name in _STATUS_FIELDS if stored.get(name) is not None}
    for name in ("errors", "held_deletions", "warnings"):
        if name in known:
            known[name] = tuple(known[name])
    if known.get("state", NEVER_RUN) not in get_args(RunState):
        raise StoreError(f"stored status has an unknown state {known['state']!r}")
    try:
        return RunStatus(**known)
    except TypeError as exc:
        raise StoreError(f"stored status is not readable: {exc}") from exc


# --- dead letters -------------------------------------------------------------------------

_LETTER_FIELDS = tuple(f.name for f in fields(DeadLetter))


def dead_letter_to_json(letter: DeadLetter) -> str:
    """The stored form of a dead letter (fields that are None are left out)."""
    values = {name: getattr(letter, name) for name in _LETTER_FIELDS}
    return dumps({name: value for name, value in values.items() if value is not None})


def dead_letter_from_json(text: str | bytes) -> DeadLetter:
    """Inverse of :func:`dead_letter_to_json`; raises ``StoreError`` on broken text."""
    try:
        data = json.loads(text)
        kind: DeadLetterKind = data["kind"]
        if kind not in get_args(DeadLetterKind):
            raise ValueError(f"unknown kind {kind!r}")
        known = {n: data[n] for n in _LETTER_FIELDS if n in data and n not in ("kind",)}
        return DeadLetter(kind=kind, **known)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"stored dead letter is not readable: {exc!r}") from exc
