"""The demo's DingTalk user: a tiny client of the sandbox's Open API (plain JSON over aiohttp).

It stands for a person using the DingTalk app, so it goes through the same HTTP API and
triggers the same callbacks as a real change would, instead of touching the sandbox's state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from syncd_lab.demo._errors import DemoFailed

ZONE = "Asia/Shanghai"


def tomorrow_at(hour: int) -> datetime:
    """``hour``:00 tomorrow in Asia/Shanghai."""
    zone = ZoneInfo(ZONE)
    day = datetime.now(zone).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone)


def meeting(summary: str, start: datetime, attendee: str) -> dict[str, Any]:
    """A one-hour CreateEvent body with one attendee."""

    def at(when: datetime) -> dict[str, str]:
        return {"dateTime": when.isoformat(timespec="seconds"), "timeZone": ZONE}

    return {
        "summary": summary,
        "description": "Created in DingTalk by `syncd demo`.",
        "location": {"displayName": "Room 4"},
        "start": at(start),
        "end": at(start + timedelta(hours=1)),
        "attendees": [{"id": attendee}],
    }


def start_of(event: dict[str, Any]) -> datetime | None:
    """The event's start as an aware datetime (None for an all-day or odd event)."""
    text = (event.get("start") or {}).get("dateTime")
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class DingTalkUser:
    """Calls the sandbox's DingTalk API with the demo app's credentials."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url
        self.token = ""

    async def login(self, app_key: str, app_secret: str) -> None:
        """Fetch an access token (``POST /v1.0/oauth2/accessToken``)."""
        data = await self._call(
            "POST", "/v1.0/oauth2/accessToken", {"appKey": app_key, "appSecret": app_secret}
        )
        self.token = str(data["accessToken"])

    async def create_event(self, union_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """CreateEvent in ``union_id``'s primary calendar; returns the created event."""
        path = f"/v1.0/calendar/users/{union_id}/calendars/primary/events"
        return await self._call("POST", path, body)

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"x-acs-dingtalk-access-token": self.token} if self.token else {}
        try:
            async with self.session.request(
                method, self.base_url + path, json=body, headers=headers
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(data, dict):
                    raise DemoFailed(f"DingTalk sandbox {method} {path} answered {resp.status}")
                return data
        except (aiohttp.ClientError, ValueError) as exc:
            raise DemoFailed(f"DingTalk sandbox {method} {path} failed: {exc}") from exc
