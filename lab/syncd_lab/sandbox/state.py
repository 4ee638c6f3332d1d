"""The sandbox's memory: events, tokens and cursors, persisted as JSON on request.

One :class:`StoredEvent` per event id; the event shows in the organizer's and in every
attendee's ``primary`` calendar. Every change bumps the global sequence number ``seq``;
a sync token remembers the sequence number it was issued at, so a delta is "everything
whose ``seq`` is larger".
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from syncd_lab.sandbox.times import now_ms

CLIENT_TOKEN_TTL = 86_400.0  # x-client-token lifetime: one day


@dataclass
class StoredEvent:
    """One event as the sandbox keeps it (writable fields normalised, plus server fields)."""

    id: str
    organizer: str
    fields: dict[str, Any]
    attendees: list[dict[str, Any]]
    create_ms: int
    update_ms: int
    seq: int
    status: str = "confirmed"
    series_master_id: str | None = None
    origin_start: str | None = None
    hidden_for: list[str] = field(default_factory=list)
    former: dict[str, int] = field(default_factory=dict)
    legacy_id: str = ""

    def attendee_ids(self) -> list[str]:
        """The unionIds of the current attendees."""
        return [a["id"] for a in self.attendees]

    def involved(self) -> list[str]:
        """Organizer first, then attendees: whose calendars hold this event."""
        ids = [self.organizer]
        ids += [i for i in self.attendee_ids() if i != self.organizer]
        return ids

    def visible_to(self, user: str) -> bool:
        """Whether the event is in ``user``'s primary calendar (deleted or not)."""
        return user in self.involved() and user not in self.hidden_for

    def gone_for(self, user: str) -> bool:
        """Whether ``user`` once saw the event but it left their calendar."""
        return not self.visible_to(user) and (user in self.former or user in self.hidden_for)


@dataclass
class State:
    """All mutable sandbox data. Handlers change it synchronously (one event loop)."""

    events: dict[str, StoredEvent] = field(default_factory=dict)
    seq: int = 0
    last_ms: int = 0
    access_tokens: dict[str, list[Any]] = field(default_factory=dict)  # token -> [app, expiry]
    sync_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def bump(self) -> tuple[int, int]:
        """A new (seq, update time in ms); times strictly increase across changes."""
        self.seq += 1
        self.last_ms = max(now_ms(), self.last_ms + 1)
        return self.seq, self.last_ms

    def clear_calendars(self) -> None:
        """Forget every event and cursor (access tokens and failed pushes stay)."""
        self.events.clear()
        self.sync_tokens.clear()
        self.page_tokens.clear()
        self.client_tokens.clear()

    def issue_sync_token(self, user: str, seq: int) -> str:
        """A new sync token for ``user``'s calendar as of ``seq``."""
        token = "st" + secrets.token_urlsafe(18)
        self.sync_tokens[token] = {"user": user, "seq": seq, "at": time.time()}
        return token

    def issue_page_token(self, page: dict[str, Any]) -> str:
        """A new nextToken remembering the rest of a listing."""
        token = "nt" + secrets.token_urlsafe(18)
        self.page_tokens[token] = page
        return token

    def issue_access_token(self, app_key: str, ttl: float) -> str:
        """A fresh access token for ``app_key`` valid ``ttl`` seconds."""
        token = secrets.token_hex(16)
        self.access_tokens[token] = [app_key, time.time() + ttl]
        return token

    def app_of_token(self, token: str) -> str | None:
        """The app key an unexpired access token belongs to."""
        entry = self.access_tokens.get(token)
        if entry is None or entry[1] <= time.time():
            return None
        return str(entry[0])

    def prune(self) -> None:
        """Drop expired access tokens and x-client-token records."""
        now = time.time()
        self.access_tokens = {k: v for k, v in self.access_tokens.items() if v[1] > now}
        self.client_tokens = {
            k: v for k, v in self.client_tokens.items() if v["at"] + CLIENT_TOKEN_TTL > now
        }

    def to_json(self) -> str:
        """Serialise everything (page tokens included) as JSON text."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        events = {k: StoredEvent(**v) for k, v in raw.pop("events", {}).items()}
        return cls(events=events, **raw)

    def save(self, path: Path) -> None:
        """Write atomically to ``path``."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> State:
        """Read ``path`` if it exists, else an empty state."""
        if not path.exists():
            return cls()
        return cls.from_json(path.read_text(encoding="utf-8"))
