"""Calendar v1.0 routes around events: attendees, rooms, respond, instances, schedule,
calendars."""

from __future__ import annotations

from aiohttp import web

from syncd_lab.sandbox._http import body_of, changed, no_body, reader, user_of, writer

CAL = "/v1.0/calendar/users/{userId}/calendars/{calendarId}"
EVENT = CAL + "/events/{eventId}"


async def add_attendee(request: web.Request) -> web.Response:
    """AddAttendee: POST .../attendees with ``attendeesToAdd``."""
    body = await body_of(request)
    changes = writer(request).add_attendees(user_of(request), request.match_info["eventId"], body)
    changed(request, changes)
    return no_body()


async def remove_attendee(request: web.Request) -> web.Response:
    """RemoveAttendee: POST .../attendees/batchRemove with ``attendeesToRemove``."""
    body = await body_of(request)
    user, event_id = user_of(request), request.match_info["eventId"]
    changed(request, writer(request).remove_attendees(user, event_id, body))
    return no_body()


async def add_meeting_rooms(request: web.Request) -> web.Response:
    """AddMeetingRooms: POST .../meetingRooms with ``meetingRoomsToAdd``."""
    body = await body_of(request)
    user, event_id = user_of(request), request.match_info["eventId"]
    changed(request, writer(request).add_rooms(user, event_id, body))
    return web.json_response({"result": True})


async def list_attendees(request: web.Request) -> web.Response:
    """ListAttendees: GET .../attendees."""
    user, event_id = user_of(request), request.match_info["eventId"]
    return web.json_response(reader(request).list_attendees(user, event_id, request.query))


async def respond_event(request: web.Request) -> web.Response:
    """RespondEvent: POST .../respond as the attendee in the path."""
    body = await body_of(request)
    changed(request, writer(request).respond(user_of(request), request.match_info["eventId"], body))
    return no_body()


async def list_instances(request: web.Request) -> web.Response:
    """ListInstances: GET .../events/{eventId}/instances."""
    user, event_id = user_of(request), request.match_info["eventId"]
    return web.json_response(reader(request).list_instances(user, event_id, request.query))


async def list_events_instances(request: web.Request) -> web.Response:
    """ListEventsInstances: GET .../calendars/{calendarId}/instances?seriesMasterId=."""
    return web.json_response(reader(request).list_series_instances(user_of(request), request.query))


async def get_schedule(request: web.Request) -> web.Response:
    """GetSchedule: POST /users/{userId}/querySchedule."""
    user_of(request)
    return web.json_response(reader(request).schedule(await body_of(request)))


async def list_calendars(request: web.Request) -> web.Response:
    """ListCalendars: GET /users/{userId}/calendars (``response.calendars`` wrapper)."""
    return web.json_response(reader(request).calendars(user_of(request)))


def add_routes(app: web.Application) -> None:
    """Register the routes, named by SDK action."""
    r = app.router
    r.add_post(EVENT + "/attendees", add_attendee, name="AddAttendee")
    r.add_get(EVENT + "/attendees", list_attendees, name="ListAttendees")
    r.add_post(EVENT + "/attendees/batchRemove", remove_attendee, name="RemoveAttendee")
    r.add_post(EVENT + "/respond", respond_event, name="RespondEvent")
    r.add_post(EVENT + "/meetingRooms", add_meeting_rooms, name="AddMeetingRooms")
    r.add_get(EVENT + "/instances", list_instances, name="ListInstances")
    r.add_get(CAL + "/instances", list_events_instances, name="ListEventsInstances")
    r.add_post("/v1.0/calendar/users/{userId}/querySchedule", get_schedule, name="GetSchedule")
    r.add_get("/v1.0/calendar/users/{userId}/calendars", list_calendars, name="ListCalendars")
