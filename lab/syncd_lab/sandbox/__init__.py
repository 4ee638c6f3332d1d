"""A faithful fake of the DingTalk Open API (calendar v1.0 + HTTP event callbacks).

Start it with ``syncd sandbox --listen HOST:PORT --seed FILE`` or in-process with
:func:`syncd_lab.sandbox.app.create_app`; the :class:`~syncd_lab.sandbox.sandbox.Sandbox`
behind it is ``app[SANDBOX_KEY]``. Paths, methods, field names and error bodies follow
DingTalk's published calendar v1.0 API (its official SDK, ``alibabacloud-dingtalk``, is
held to them by tests/contract/test_sandbox_sdk*.py). Where DingTalk's documentation leaves
a question open, the sandbox decides as follows (clients must not rely on more than this):

Errors (body always ``{"code", "message", "requestid"}``)
    * missing token header → 400 ``AuthenticationFailed.MissingParameter``; unknown or
      expired token → 400 ``InvalidAuthentication``; bad appKey/appSecret → 400
      ``invalidClientIdOrSecret``; unparseable time → 400
      ``InvalidParameter.ParsedISO8601TimestampError``.
    * deleted, unknown or not-visible event id → **404** ``instanceNotExist``.
    * unknown/expired ``syncToken`` → 400 ``invalidParameter.syncToken`` (invented; re-list);
      unknown/expired ``nextToken`` → 400 ``invalidParameter.nextToken`` (invented).
    * validation failures → 400 ``invalidParameter.<field>`` (invented), e.g.
      ``invalidParameter.summary`` (> 2048 chars), ``invalidParameter.description``
      (> 5000), ``invalidParameter.attendees`` (> 500 in one call),
      ``invalidParameter.maxResults`` (> 100), ``invalidParameter.timeMax`` (window > 1 year);
      more than 5000 attendees on an event → 400 ``invalidParameter.attendeesExceedLimit``.
    * a non-organizer patching, or removing attendees → 403 ``forbidden.noPermission``.
    * throttling → 403 ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``; injected errors
      → 500 ``InternalError`` (nothing happened) or 504 ``GatewayTimeout`` (it happened).
    * same ``x-client-token`` for a different request → 409
      ``invalidRequest.duplicateClientToken``; for the same request → the first answer again,
      with no second change and no second callback (one day).

Semantics
    * One event id in the organizer's and every attendee's ``primary`` calendar; the
      organizer is not repeated in ``attendees``. Any unionId is accepted; the seed only
      supplies display names and emails (patch ``attendees[].email`` resolves by email).
    * Only the organizer may patch or change attendees (``eventConfig.
      allowAttendeeAddParticipants`` lets attendees add); DELETE by the organizer cancels the
      event (a ``status: "cancelled"`` tombstone); DELETE by an attendee removes it from
      that attendee's view only (callback ``ChangeType: deleteView``).
    * Removed attendees see the event as ``cancelled`` in their syncToken delta and with
      ``showDeleted``.
    * ``timeMin``/``timeMax`` bound the event **start** (``[timeMin, timeMax)``); a series
      master is listed when any occurrence can fall in the window.
    * ``syncToken`` comes on the last page only; a delta ignores the time window and returns
      every event of the user changed since, deleted ones as ``cancelled``, paged by
      ``nextToken``. Tokens are per user; :meth:`Sandbox.expire_sync_tokens` invalidates all.
    * Recurrence: the master carries ``recurrence``. An occurrence has the id
      ``<masterId>_<yyyymmddThhmmssZ>`` (original start, UTC) — both instance endpoints and
      ``eventsview`` return such ids. PUT on such an id materialises an exception event
      (``seriesMasterId`` + ``originStart``); DELETE on it materialises a cancelled one.
      ListEvents returns the master plus materialised exceptions; cancelled exceptions of a
      live series are listed even without ``showDeleted`` (they are EXDATEs). Deleting the
      master cancels its exceptions. Past occurrences are *not* materialised automatically.
    * ``reminders[].minutes``: int in, string out; omitted on create → 15 min (all-day: 900
      min = 09:00 the day before); ``[]`` → none. ``extra`` is accepted and never returned.
    * ``createTime``/``updateTime`` are ``yyyy-MM-ddTHH:mm:ss.SSSZ`` and strictly increase.
    * Only ``calendarId=primary`` exists (ListCalendars returns id ``primary``).

Callbacks
    * Every change made through the API is pushed to every app with a callback URL, in the
      background after the response: ``calendar_event_change`` with PascalCase keys
      (``--camel-case``: camelCase calendar fields plus ``eventId``), ``operator:
      {"type": "user"}``; ``UnionIdList`` = organizer, attendees and removed attendees.
    * The receiver must answer 200 with an encrypted, signed ``success`` within 1.5 s.
      Failures are retried after 0.2 s, 0.5 s and 1 s, then stored for
      ``GET /v1.0/event/callbacks/failedResults`` (≤ 200 per call, oldest first; fetched
      items are removed, ``hasMore`` says whether more remain).
    * ``check_url`` is pushed when a URL is registered through ``POST /_sandbox/callbacks``
      (kept only if answered) or ``set_callback(..., check=True)``; seeded URLs are not checked.

Stream mode (:mod:`syncd_lab.sandbox.stream`)
    * An app seeded with ``delivery: stream`` gets its ``calendar_event_change`` events over
      its open Stream connections (``POST /v1.0/gateway/connections/open`` → ``ws://…/connect
      ?ticket=``; frames and ACKs as the official ``dingtalk-stream`` SDK speaks them), not
      as HTTP pushes. An event stays pending until an ACK with code 200 (not ``LATER``);
      it is sent again after the ACK timeout (5 s) and to every new connection, and waits
      while none is open. ``POST /_sandbox/stream`` ``{app_key, action: ping|disconnect|
      close}``; counters under ``stream`` in ``GET /_sandbox/stats``.

Contacts (:mod:`syncd_lab.sandbox.routes_contacts`)
    * ``POST /topapi/v2/department/listsubid`` and ``POST /topapi/v2/user/list`` (counted as
      ``ListSubDepartmentIds`` / ``ListUsersV2``, faults apply) with ``?access_token=``,
      answering oapi's ``errcode`` bodies, from the seed's ``users[].departments`` and
      optional ``departments: [{id, parent}]`` (undeclared ones sit under the root 1).
      ``POST /_sandbox/users`` ``{union_id, name, email, departments}`` adds or updates a
      user; ``DELETE /_sandbox/users/{union_id}`` removes one.

Admin (``/_sandbox/``, no token, never counted, never faulted)
    ``GET stats`` · ``POST reset`` · ``GET state`` · ``GET|POST faults`` (``latency_ms``,
    ``error_rate``, ``error_status``, ``throttle_rate``, ``callback_drop_rate``, ``qps_limit``,
    ``seed``) · ``POST callbacks`` ``{app_key, url, token?, aes_key?, check?}`` ·
    ``POST expire`` ``{what: sync_tokens|access_tokens}`` · ``POST drain`` (waits for pushes).
"""
