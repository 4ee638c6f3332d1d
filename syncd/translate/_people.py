"""People: unionId ⇄ e-mail through the tenant directory, PARTSTAT ⇄ responseStatus.

Policy: the model identifies people by lower-cased e-mail without ``mailto:``. A DingTalk
user missing from the directory gets a stable stand-in address
``dt-<base32 of the unionId>@unknown.dingtalk.invalid`` so nobody is silently dropped and
the unionId comes back when the event returns to DingTalk. The organizer is never also
listed as an attendee in the model.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from syncd.model import Attendee, Event, PartStat
from syncd.translate import _common
from syncd.translate.context import Context

STAND_IN_DOMAIN = "unknown.dingtalk.invalid"

TO_PARTSTAT: dict[str, PartStat] = {
    "needsaction": "needs-action",
    "needs-action": "needs-action",
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
}
TO_RESPONSE = {
    "needs-action": "needsAction",
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
}


def normal_email(address: str) -> str:
    """``MAILTO:Alice@X.org`` → ``alice@x.org``."""
    text = address.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def email_for(union_id: str, ctx: Context) -> str:
    """The directory e-mail of a unionId, or its stand-in address."""
    known = ctx.directory.email_of(union_id)
    if known:
        return normal_email(known)
    code = base64.b32encode(union_id.encode()).decode().rstrip("=").lower()
    return f"dt-{code}@{STAND_IN_DOMAIN}"


def union_id_for(email: str, ctx: Context) -> str | None:
    """The unionId behind an e-mail (directory or stand-in), or None if unknown."""
    found = ctx.directory.union_id_of(email)
    if found:
        return found
    local, _, domain = normal_email(email).partition("@")
    if domain != STAND_IN_DOMAIN or not local.startswith("dt-"):
        return None
    code = local[3:].upper()
    try:
        return base64.b32decode(code + "=" * (-len(code) % 8)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def user_email(ctx: Context) -> str | None:
    """The bound user's e-mail (or stand-in), None when no user is bound."""
    return email_for(ctx.user, ctx) if ctx.user else None


def attendees_from_dingtalk(
    items: Iterable[Any], organizer: str | None, ctx: Context
) -> tuple[Attendee, ...]:
    """DingTalk response attendees as model attendees (organizer and duplicates left out)."""
    out: dict[str, Attendee] = {}
    for item in items:
        if not isinstance(item, Mapping) or not item.get("id"):
            continue
        email = email_for(str(item["id"]), ctx)
        if email == organizer or email in out:
            continue
        status = str(item.get("responseStatus") or "needsAction").lower()
        out[email] = Attendee(
            email=email,
            name=_common.clean_name(item.get("displayName")),
            partstat=TO_PARTSTAT.get(status, "needs-action"),
            optional=bool(item.get("isOptional")),
        )
    return tuple(sorted(out.values(), key=lambda a: a.email))


def attendees_to_dingtalk(
    attendees: Iterable[Attendee], ctx: Context
) -> tuple[list[dict[str, Any]], list[str]]:
    """Request attendees ``[{id, isOptional}]`` and the e-mails that have no unionId."""
    body: list[dict[str, Any]] = []
    missing: list[str] = []
    seen = {ctx.user}
    for person in attendees:
        union_id = union_id_for(person.email, ctx)
        if union_id is None:
            missing.append(person.email)
        elif union_id not in seen:
            seen.add(union_id)
            body.append({"id": union_id, "isOptional": person.optional})
    return body, missing


def clean_people(organizer: str | None, attendees: Iterable[Attendee]) -> tuple[Attendee, ...]:
    """Attendees without the organizer and without duplicate e-mails, sorted by e-mail."""
    out: dict[str, Attendee] = {}
    for person in attendees:
        if person.email != organizer and person.email not in out:
            out[person.email] = person
    return tuple(sorted(out.values(), key=lambda a: a.email))


def user_response(event: Event, ctx: Context) -> str | None:
    """The bound user's answer as a DingTalk ``responseStatus``, when they only attend.

    DingTalk takes a participant's answer through its respond operation, not through the
    event body; None when the bound user organizes the event or is not invited.
    """
    me = user_email(ctx)
    if me is None or event.organizer in (None, me):
        return None
    for person in event.attendees:
        if person.email == me:
            return TO_RESPONSE[person.partstat]
    return None


def editable_in_dingtalk(event: Event, ctx: Context) -> bool:
    """True when the bound user may write the event body in DingTalk (they organize it)."""
    return event.organizer is None or event.organizer == user_email(ctx)
