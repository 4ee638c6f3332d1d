"""Stream frames and ACKs (syncd.delivery.frames), and the ``delivery`` key of a tenant."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from syncd.config import Tenant
from syncd.delivery import frames
from syncd.errors import BadPayload
from tests.unit.test_config_models import TENANT


def _event_frame(**headers: str) -> frames.Frame:
    data = {
        "calendarEventId": "ev1",
        "unionIdList": ["u-alice", "u-bob"],
        "changeType": "create",
        "eventId": "from-data",
    }
    base = {"messageId": "m1", "eventType": "calendar_event_change", "eventId": "e1"}
    return frames.Frame("EVENT", {**base, **headers}, json.dumps(data))


def test_event_frame_parses_to_a_change_keyed_by_its_event_id() -> None:
    event = frames.event_of(_event_frame())
    assert event.event_type == "calendar_event_change"
    assert event.push_id == "e1"
    assert event.union_ids == ("u-alice", "u-bob")
    assert event.calendar_event_id == "ev1"
    assert event.change_type == "created"


def test_frame_text_round_trip_and_malformed_frames() -> None:
    frame = frames.parse_frame(
        '{"specVersion":"1.0","type":"SYSTEM","headers":{"topic":"ping","messageId":"p"},'
        '"data":"{\\"opaque\\":\\"x\\"}"}'
    )
    assert (frame.type, frame.topic, frame.message_id) == ("SYSTEM", "ping", "p")
    for bad in ("nope", "[1]", '{"type": 1, "headers": {}}', '{"type": "EVENT"}'):
        with pytest.raises(BadPayload):
            frames.parse_frame(bad)
    with pytest.raises(BadPayload):
        frames.event_of(frames.Frame("EVENT", {"eventType": "calendar_event_change"}, "[]"))
    with pytest.raises(BadPayload):  # a calendar change without unionIdList
        frames.event_of(frames.Frame("EVENT", {"eventType": "calendar_event_change"}, "{}"))


def test_acks_say_success_only_when_queued() -> None:
    frame = _event_frame()
    ok = json.loads(frames.ack(frame, ok=True))
    later = json.loads(frames.ack(frame, ok=False))
    assert ok["code"] == 200
    assert ok["headers"] == {"messageId": "m1", "contentType": "application/json"}
    assert json.loads(ok["data"])["status"] == "SUCCESS"
    assert later["code"] == 500
    assert json.loads(later["data"]) == {"status": "LATER"}
    ping = frames.Frame("SYSTEM", {"topic": "ping", "messageId": "p"}, '{"opaque":"x"}')
    pong = json.loads(frames.pong(ping))
    assert (pong["code"], json.loads(pong["data"])) == (200, {"opaque": "x"})


def test_open_request_and_connect_url() -> None:
    body = frames.open_request("k", "s", "syncd/0")
    assert body["subscriptions"] == [{"type": "EVENT", "topic": "*"}]
    url = frames.connect_url({"endpoint": "ws://h:1/connect", "ticket": "a b/c"})
    assert url == "ws://h:1/connect?ticket=a+b%2Fc"
    with pytest.raises(BadPayload):
        frames.connect_url({"endpoint": "ws://h:1/connect"})


def test_stream_tenant_needs_no_callback_http_tenant_does() -> None:
    data = copy.deepcopy(TENANT)
    del data["dingtalk"]["callback"]
    with pytest.raises(ValidationError, match="callback is required"):
        Tenant.model_validate(data)
    data["dingtalk"]["delivery"] = "stream"
    tenant = Tenant.model_validate(data)
    assert tenant.dingtalk.callback is None
    assert tenant.owner_key == tenant.dingtalk.app_key
    assert Tenant.model_validate(TENANT).dingtalk.delivery == "http"
