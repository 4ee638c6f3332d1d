"""Pure translation DingTalk JSON <-> canonical Event <-> iCalendar (no I/O).

Public surface (implementations in the submodules):

- ``Directory`` / ``Context``: what translation needs to know about the tenant.
- ``event_from_dingtalk(master, instances, ctx) -> Event``
- ``event_to_dingtalk(event, ctx) -> dict``  (create/patch body; no ``id``)
- ``event_from_ical(text, ctx) -> Event``     (one calendar object resource)
- ``event_to_ical(event, ctx) -> str``
- ``uid_for_dingtalk_id(event_id) -> str``   (deterministic UID for DingTalk-born events)
"""

from syncd.translate.context import Context, Directory

__all__ = ["Context", "Directory"]
