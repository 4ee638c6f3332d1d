"""How a feed item is recognised from one fetch to the next (pure; no I/O).

- ``uid``: by its UID. An edit keeps the UID, so it updates the same DingTalk event.
- ``content``: by a hash of what syncd maps (times, rule, exceptions, summary, ... the
  event's fingerprint, which never includes DTSTAMP, LAST-MODIFIED, PRODID, SEQUENCE or
  ``X-`` properties), for feeds that make up new UIDs on every fetch. An edit is then a
  new item (the old DingTalk event is deleted, a new one created): nothing else can tell
  an edit from a replacement in such a feed.
- ``auto`` (the default): ``uid`` until the feed is seen regenerating its UIDs (none of
  the previous fetch's UIDs is left while most of its contents are), then ``content``
  for good. The switch writes nothing: each item keeps the uid its pair was made with.

:class:`FeedState` is what the side keeps in its cursor between fetches: the HTTP
validators, the mode, and per item id its uid and content key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from syncd.errors import SyncTokenInvalid
from syncd.translate.feed import FeedItem, volatile

Mode = Literal["uid", "content"]
Identity = Literal["uid", "content", "auto"]
CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class Keyed:
    """One feed item with the id it has on the ICS side and the uid its event carries."""

    id: str
    uid: str
    key: str
    item: FeedItem


@dataclass(frozen=True, slots=True)
class FeedState:
    """The ICS side's cursor: validators of the last good fetch and its items."""

    etag: str | None = None
    last_modified: str | None = None
    mode: Mode = "uid"
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (uid, key)

    def dumps(self) -> str:
        """The cursor text (JSON)."""
        data = {
            "v": CURSOR_VERSION,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "mode": self.mode,
            "items": {k: list(v) for k, v in sorted(self.items.items())},
        }
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, text: str) -> FeedState:
        """Parse a cursor; ``SyncTokenInvalid`` (so the caller re-fetches in full) if unusable."""
        try:
            data = json.loads(text)
            if data.get("v") != CURSOR_VERSION or data.get("mode") not in ("uid", "content"):
                raise ValueError("unknown cursor version")
            items = {str(k): (str(v[0]), str(v[1])) for k, v in data["items"].items()}
            return cls(data.get("etag"), data.get("last_modified"), data["mode"], items)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise SyncTokenInvalid(f"unusable ICS cursor: {exc}") from exc


def content_key(item: FeedItem) -> str:
    """A hash of what matters in the item: the event's fingerprint (uid and volatile
    properties excluded); for an untranslatable item, its text without volatile lines."""
    if item.event is not None:
        return item.event.fingerprint()
    lines = [ln for ln in item.text.splitlines() if not volatile(_name(ln)) and _name(ln) != "UID"]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def _name(line: str) -> str:
    return line.split(":", 1)[0].split(";", 1)[0].upper()


def choose_mode(identity: Identity, items: list[FeedItem], previous: FeedState | None) -> Mode:
    """The mode of this fetch: fixed by ``identity``, or detected for ``auto``."""
    if identity != "auto":
        return identity
    if previous is None:
        return "uid"
    if previous.mode == "content" or regenerated(items, previous):
        return "content"
    return "uid"


def regenerated(items: list[FeedItem], previous: FeedState) -> bool:
    """Whether the feed made up new UIDs: none of the previous UIDs is left, while at
    least half of the previous (or current, if fewer) contents are still there."""
    before_uids = {uid for uid, _ in previous.items.values()}
    if not before_uids or not items or before_uids & {i.uid for i in items}:
        return False
    before_keys = {key for _, key in previous.items.values()}
    now_keys = {content_key(i) for i in items}
    kept = len(before_keys & now_keys)
    return kept > 0 and kept * 2 >= min(len(before_keys), len(now_keys))


def assign(items: Iterable[FeedItem], mode: Mode, previous: FeedState | None) -> list[Keyed]:
    """Each item with its id and uid in ``mode``.

    ``uid`` mode: the id is the UID. ``content`` mode: the id is ``content:<key>`` (with
    ``#n`` for the n-th repeat of identical content), and the uid is the one the same
    content had in the previous fetch (so pairs made before a switch are found again),
    else one derived from the id.
    """
    if mode == "uid":
        return [Keyed(i.uid, i.uid, content_key(i), i) for i in items]
    before = previous.items if previous is not None else {}
    ids = _content_ids(items)
    taken = {before[i][0] for i, _, _ in ids if i in before}
    spare: dict[str, list[str]] = {}
    for uid, key in before.values():
        if uid not in taken:
            spare.setdefault(key, []).append(uid)
    out = []
    for item_id, key, item in ids:
        if item_id in before:
            uid = before[item_id][0]
        elif spare.get(key):
            uid = spare[key].pop(0)
        else:
            uid = f"ics-{item_id.removeprefix('content:').replace('#', '-')}@syncd"
        out.append(Keyed(item_id, uid, key, item))
    return out


def _content_ids(items: Iterable[FeedItem]) -> list[tuple[str, str, FeedItem]]:
    """``(id, key, item)`` in content mode: ``content:<key>``, ``#n`` for the n-th repeat."""
    seen: dict[str, int] = {}
    out = []
    for item in items:
        key = content_key(item)
        n = seen[key] = seen.get(key, 0) + 1
        out.append((f"content:{key}" + (f"#{n}" if n > 1 else ""), key, item))
    return out


def state_of(keyed: list[Keyed], mode: Mode, etag: str | None, modified: str | None) -> FeedState:
    """The cursor after a fetch whose items were ``keyed``."""
    return FeedState(etag, modified, mode, {k.id: (k.uid, k.key) for k in keyed})
