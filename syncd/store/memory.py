"""An in-process :class:`~syncd.sync.ports.MappingStore` kept in dicts.

For unit tests and dry runs. It follows the same contract as the Redis store (the suite in
``tests/contract/test_store_contract.py`` runs against both): every method is atomic
because none of them awaits anything, status fields merge, and dead letters and status
go through the same codec as in Redis (so a caller cannot rely on keeping live objects in
them). An empty ``dingtalk_id`` or ``caldav_href`` counts as none.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from syncd.model import BindingRef, PairState, Side
from syncd.store.codec import (
    dead_letter_from_json,
    dead_letter_to_json,
    dumps,
    status_fields,
    status_from_fields,
)
from syncd.sync.ports import ConflictRecord, PairSlice
from syncd.sync.records import DeadLetter, RunStatus


@dataclass
class _Binding:
    pairs: dict[str, PairState] = field(default_factory=dict)
    by_dingtalk: dict[str, str] = field(default_factory=dict)
    by_href: dict[str, str] = field(default_factory=dict)
    cursors: dict[Side, str] = field(default_factory=dict)
    conflicts: list[ConflictRecord] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)  # JSON text, as Redis keeps them
    status: dict[str, str] = field(default_factory=dict)  # field -> JSON text


def _unindex(index: dict[str, str], key: str | None, uid: str) -> None:
    """Remove ``key`` from ``index`` only if it still points at ``uid``."""
    if key and index.get(key) == uid:
        del index[key]


class MemoryStore:
    """A :class:`~syncd.sync.ports.MappingStore` in memory, one namespace per binding."""

    def __init__(self) -> None:
        self._bindings: dict[BindingRef, _Binding] = {}

    def _of(self, ref: BindingRef) -> _Binding:
        return self._bindings.setdefault(ref, _Binding())

    async def load_pairs(self, ref: BindingRef) -> dict[str, PairState]:
        """All pairs of the binding, keyed by uid (a copy: changing it changes nothing)."""
        return dict(self._of(ref).pairs)

    async def load_touched(
        self,
        ref: BindingRef,
        *,
        dingtalk_ids: Collection[str] = (),
        hrefs: Collection[str] = (),
        uids: Collection[str] = (),
    ) -> PairSlice:
        """The pairs these ids touch, every pair lacking a side, and the number of pairs."""
        b = self._of(ref)
        wanted = set(uids)
        wanted.update(b.by_dingtalk[i] for i in dingtalk_ids if i in b.by_dingtalk)
        wanted.update(b.by_href[h] for h in hrefs if h in b.by_href)
        wanted.update(u for u, p in b.pairs.items() if not (p.dingtalk_id and p.caldav_href))
        return PairSlice({u: b.pairs[u] for u in wanted if u in b.pairs}, len(b.pairs))

    async def some_hrefs(self, ref: BindingRef, count: int) -> list[str]:
        """Up to ``count`` CalDAV hrefs of the binding's pairs (the first ones indexed)."""
        return list(self._of(ref).by_href)[: max(0, count)]

    async def save_pair(self, ref: BindingRef, pair: PairState) -> None:
        """Insert or replace the pair and move its DingTalk-id and href index entries."""
        b = self._of(ref)
        old = b.pairs.get(pair.uid)
        if old is not None:
            if old.dingtalk_id != pair.dingtalk_id:
                _unindex(b.by_dingtalk, old.dingtalk_id, pair.uid)
            if old.caldav_href != pair.caldav_href:
                _unindex(b.by_href, old.caldav_href, pair.uid)
        b.pairs[pair.uid] = pair
        if pair.dingtalk_id:
            b.by_dingtalk[pair.dingtalk_id] = pair.uid
        if pair.caldav_href:
            b.by_href[pair.caldav_href] = pair.uid

    async def drop_pair(self, ref: BindingRef, uid: str) -> None:
        """Forget the pair and its index entries; dropping an unknown uid is fine."""
        b = self._of(ref)
        old = b.pairs.pop(uid, None)
        if old is not None:
            _unindex(b.by_dingtalk, old.dingtalk_id, uid)
            _unindex(b.by_href, old.caldav_href, uid)

    async def find_by_dingtalk_id(self, ref: BindingRef, dingtalk_id: str) -> PairState | None:
        """The pair whose DingTalk side is ``dingtalk_id``, if any."""
        b = self._of(ref)
        uid = b.by_dingtalk.get(dingtalk_id)
        return b.pairs.get(uid) if uid is not None else None

    async def find_by_href(self, ref: BindingRef, href: str) -> PairState | None:
        """The pair whose CalDAV side is ``href``, if any."""
        b = self._of(ref)
        uid = b.by_href.get(href)
        return b.pairs.get(uid) if uid is not None else None

    async def get_cursor(self, ref: BindingRef, side: Side) -> str | None:
        """The committed cursor of one side, or None before the first complete sync."""
        return self._of(ref).cursors.get(side)

    async def set_cursors(self, ref: BindingRef, cursors: Mapping[Side, str | None]) -> None:
        """Commit the given cursors together; None clears a side's cursor."""
        b = self._of(ref)
        for side, token in cursors.items():
            if token is None:
                b.cursors.pop(Side(side), None)
            else:
                b.cursors[Side(side)] = token

    async def add_conflict(self, ref: BindingRef, record: ConflictRecord) -> None:
        """Append a decided conflict (kept in the order recorded)."""
        self._of(ref).conflicts.append(record)

    async def list_conflicts(self, ref: BindingRef) -> list[ConflictRecord]:
        """Every recorded conflict, oldest first."""
        return list(self._of(ref).conflicts)

    async def add_dead_letter(self, ref: BindingRef, letter: DeadLetter) -> None:
        """Append a dead letter."""
        self._of(ref).dead.append(dead_letter_to_json(letter))

    async def list_dead_letters(self, ref: BindingRef) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        return [dead_letter_from_json(text) for text in self._of(ref).dead]

    async def clear_dead_letters(self, ref: BindingRef, count: int | None = None) -> None:
        """Forget the binding's oldest ``count`` dead letters (all of them when None)."""
        del self._of(ref).dead[: count if count is not None else len(self._of(ref).dead)]

    async def resolve_dead_letters(
        self, ref: BindingRef, *, binding: bool, uids: Collection[str] = ()
    ) -> list[DeadLetter]:
        """Remove the binding-level (``binding``) and the ``uids``' item letters; return them."""
        wanted = set(uids)
        keep: list[str] = []
        gone: list[DeadLetter] = []
        for text in self._of(ref).dead:
            letter = dead_letter_from_json(text)
            healed = (letter.uid in wanted) if letter.uid is not None else binding
            if healed:
                gone.append(letter)
            else:
                keep.append(text)
        self._of(ref).dead[:] = keep
        return gone

    async def set_status(self, ref: BindingRef, status: RunStatus) -> None:
        """Merge ``status`` into the stored status: the fields it sets replace, others stay."""
        self._of(ref).status.update({k: dumps(v) for k, v in status_fields(status).items()})

    async def get_status(self, ref: BindingRef) -> RunStatus:
        """The merged status of the binding (``never-run`` before the first run)."""
        return status_from_fields({k: json.loads(v) for k, v in self._of(ref).status.items()})

    async def wipe(self, ref: BindingRef) -> None:
        """Forget everything stored about the binding."""
        self._bindings.pop(ref, None)
