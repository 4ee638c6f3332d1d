"""What translation needs to know about a tenant: its directory, zone and bound user."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Directory:
    """DingTalk unionId <-> e-mail for one tenant (e-mails compared case-insensitively)."""

    emails: Mapping[str, str] = field(default_factory=dict)  # union_id -> email

    def email_of(self, union_id: str) -> str | None:
        return self.emails.get(union_id)

    def union_id_of(self, email: str) -> str | None:
        wanted = email.lower().removeprefix("mailto:")
        for union_id, known in self.emails.items():
            if known.lower() == wanted:
                return union_id
        return None


@dataclass(frozen=True, slots=True)
class Context:
    """Translation settings of one binding.

    ``user`` is the bound DingTalk user's unionId (whose primary calendar is synced);
    ``timezone`` is the tenant's zone for floating iCalendar times.
    """

    directory: Directory = field(default_factory=Directory)
    user: str = ""
    timezone: str = "UTC"
