"""Calendar v1.0 event routes: create, get, list, eventsview, patch (PUT), delete."""

from __future__ import annotations

from aiohttp import web

from syncd_lab.sandbox._http import (
    body_of,
    changed,
    corp_of,
    no_body,
    reader,
    sandbox_of,
    user_of,
    writer,
)
from syncd_lab.sandbox.render import render

EVENTS = "/v1.0/calendar/users/{userId}/calendars/{calendarId}/events"
ONE = EVENTS + "/{eventId}"


async def create_event(request: web.Request) -> web.Response:
    """CreateEvent: POST .../events."""
    user = user_of(request)
    ev, changes = writer(request).create(user, await body_of(request))
    changed(request, changes)
    sb = sandbox_of(request)
    return web.json_response(render(ev, user, sb.seed, corp_id=corp_of(request), shape="create"))


async def get_event(request: web.Request) -> web.Response:
    """GetEvent: GET .../events/{eventId}."""
    user = user_of(request)
    body = reader(request).get(user, request.match_info["eventId"], request.query)
    return web.json_response(body)


async def list_events(request: web.Request) -> web.Response:
    """ListEvents: GET .../events (timeMin/timeMax/showDeleted/syncToken/nextToken)."""
    return web.json_response(reader(request).list_events(user_of(request), request.query))


async def list_events_view(request: web.Request) -> web.Response:
    """ListEventsView: GET .../eventsview."""
    return web.json_response(reader(request).list_view(user_of(request), request.query))


async def patch_event(request: web.Request) -> web.Response:
    """PatchEvent: PUT .../events/{eventId} (partial update)."""
    user = user_of(request)
    body = await body_of(request)
    ev, changes = writer(request).patch(user, request.match_info["eventId"], body)
    changed(request, changes)
    sb = sandbox_of(request)
    return web.json_response(render(ev, user, sb.seed, corp_id=corp_of(request), shape="patch"))


async def delete_event(request: web.Request) -> web.Response:
    """DeleteEvent: DELETE .../events/{eventId} (leaves a cancelled tombstone)."""
    changed(request, writer(request).delete(user_of(request), request.match_info["eventId"]))
    return no_body()


def add_routes(app: web.Application) -> None:
    """Register the event routes, named by SDK action."""
    app.router.add_post(EVENTS, create_event, name="CreateEvent")
    app.router.add_get(EVENTS, list_events, name="ListEvents")
    app.router.add_get(ONE, get_event, name="GetEvent")
    app.router.add_put(ONE, patch_event, name="PatchEvent")
    app.router.add_delete(ONE, delete_event, name="DeleteEvent")
    app.router.add_get(
        "/v1.0/calendar/users/{userId}/calendars/{calendarId}/eventsview",
        list_events_view,
        name="ListEventsView",
    )
