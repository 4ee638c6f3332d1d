"""Property: a client that lists once and then follows syncToken deltas stays exact.

Random edits (create, patch, delete, attendee add/remove/hide, respond) interleave with
incremental syncs by every user; each user's mirror must always equal a fresh full listing.
Runs the sandbox's calendar logic (Writer/Reader over State) directly, with tiny pages.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd_lab.sandbox.errors import ApiError
from syncd_lab.sandbox.reader import Reader
from syncd_lab.sandbox.state import State
from syncd_lab.sandbox.writer import Writer
from tests.fixtures.sandbox import default_seed

USERS = ["u-alice", "u-bob", "u-carol"]
SEED = default_seed()


def body(summary: str, day: int, attendees: list[str]) -> dict[str, Any]:
    """A timed create body."""
    return {
        "summary": summary,
        "start": {"dateTime": f"2025-09-{day:02d}T10:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "end": {"dateTime": f"2025-09-{day:02d}T11:00:00+08:00", "timeZone": "Asia/Shanghai"},
        "attendees": [{"id": a} for a in attendees],
    }


def pages(reader: Reader, user: str, **query: str) -> tuple[list[dict[str, Any]], str]:
    """Every page of ListEvents with maxResults 2."""
    out: list[dict[str, Any]] = []
    params = {"maxResults": "2", **query}
    while True:
        page = reader.list_events(user, params)
        out += page["events"]
        if not page.get("nextToken"):
            return out, page["syncToken"]
        params = {"maxResults": "2", "nextToken": page["nextToken"]}


class Client:
    """One user's mirror of their calendar, kept by syncToken deltas."""

    def __init__(self, reader: Reader, user: str) -> None:
        self.user = user
        events, self.token = pages(reader, user)
        self.mirror = {e["id"]: e["summary"] for e in events}

    def sync(self, reader: Reader) -> None:
        delta, self.token = pages(reader, self.user, syncToken=self.token)
        for e in delta:
            if e["status"] == "cancelled":
                self.mirror.pop(e["id"], None)
            else:
                self.mirror[e["id"]] = e["summary"]


def actor(state: State, event_id: str, who: str, fallback: str) -> str:
    """The event's organizer, its first attendee, or ``fallback`` (any user)."""
    ev = state.events[event_id]
    if who == "organizer":
        return ev.organizer
    if who == "attendee" and ev.attendees:
        return str(ev.attendees[0]["id"])
    return fallback


def apply(writer: Writer, op: tuple[Any, ...], ids: list[str]) -> None:
    """Run one random operation; refusals (ApiError) are part of the game."""
    kind, who, user, pick, other, day = op
    try:
        if kind == "create":
            ids.append(writer.create(user, body(f"s{len(ids)}", day, [other]))[0].id)
            return
        if not ids:
            return
        event_id = ids[pick % len(ids)]
        user = actor(writer.state, event_id, who, user)
        if kind == "patch":
            writer.patch(user, event_id, {"id": event_id, "summary": f"p{day}"})
        elif kind == "delete":
            writer.delete(user, event_id)
        elif kind == "add":
            writer.add_attendees(user, event_id, {"attendeesToAdd": [{"id": other}]})
        elif kind == "remove":
            gone = actor(writer.state, event_id, "attendee", other)
            writer.remove_attendees(user, event_id, {"attendeesToRemove": [{"id": gone}]})
        elif kind == "respond":
            writer.respond(user, event_id, {"responseStatus": "accepted"})
    except ApiError:
        pass


OPS = st.tuples(
    st.sampled_from(["create", "patch", "delete", "add", "remove", "respond"]),
    st.sampled_from(["organizer", "organizer", "attendee", "any"]),
    st.sampled_from(USERS),
    st.integers(0, 3),
    st.sampled_from(USERS),
    st.integers(1, 28),
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.one_of(OPS, st.sampled_from(USERS)), min_size=4, max_size=40))
def test_delta_following_client_matches_full_listing(steps: list[Any]) -> None:
    """After any interleaving of edits and syncs, every mirror equals a full re-list."""
    state = State()
    writer, reader = Writer(state, SEED), Reader(state, SEED, "dingcorp1")
    clients = {u: Client(reader, u) for u in USERS}
    ids: list[str] = []
    for step in steps:
        if isinstance(step, str):
            clients[step].sync(reader)
        else:
            apply(writer, step, ids)
    for user, client in clients.items():
        client.sync(reader)
        fresh, _ = pages(reader, user)
        assert client.mirror == {e["id"]: e["summary"] for e in fresh}, user
