"""Binding templates: directory users x templates -> bindings. Pure: no I/O.

:func:`expand` takes a tenant and its imported DingTalk directory (or ``None`` for a
static one) and returns the tenant as the workers serve it: the directory with the
``extra`` entries merged over the import, and the static bindings followed by one binding
per (template, selected user). Placeholders ``{user}`` (unionId), ``{email}`` and
``{local}`` (the e-mail before ``@``) expand in ``id`` and ``caldav.url`` (percent-encoded
there, ``@`` kept). Rules:

- a static binding wins over a template's binding of the same id (or calendar URL);
- a later template's binding with an id (or URL) already taken is left out, with a problem;
- an expansion that is not a valid binding (say a unionId with capitals in the id) is
  left out, with a one-line problem; the rest expands.
- ``users: {department: D}`` selects members of D and of every department below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from urllib.parse import quote

from pydantic import ValidationError

from syncd.config._load import Config
from syncd.config._models import (
    Binding,
    BindingTemplate,
    DepartmentSelector,
    DirectoryEntry,
    Tenant,
)
from syncd.model import DirectoryUser, OrgDirectory


@dataclass(frozen=True, slots=True)
class Expansion:
    """The effective tenant, the merged directory, and what the templates gave."""

    tenant: Tenant
    users: tuple[DirectoryUser, ...]
    from_template: frozenset[str]  # ids of the bindings that came from a template
    problems: tuple[str, ...]


def merged_users(tenant: Tenant, imported: OrgDirectory | None) -> tuple[DirectoryUser, ...]:
    """Imported users with the static entries merged over them (an entry wins for its
    unionId and for its e-mail), sorted by unionId."""
    by_id = {u.union_id: u for u in imported.users} if imported is not None else {}
    static_emails = {e.email.lower(): e.union_id for e in tenant.directory}
    by_id = {uid: u for uid, u in by_id.items() if static_emails.get(u.email.lower(), uid) == uid}
    for entry in tenant.directory:
        known = by_id.get(entry.union_id)
        by_id[entry.union_id] = DirectoryUser(
            union_id=entry.union_id,
            email=entry.email,
            name=known.name if known else "",
            userid=known.userid if known else "",
            departments=known.departments if known else (),
        )
    return tuple(by_id[uid] for uid in sorted(by_id))


def selected(
    template: BindingTemplate, users: Iterable[DirectoryUser], org: OrgDirectory | None
) -> list[DirectoryUser]:
    """The users ``template.users`` selects, in the given order."""
    chosen = template.users
    if chosen == "all":
        return list(users)
    if isinstance(chosen, DepartmentSelector):
        wanted = (org or OrgDirectory()).descendants(chosen.department)
        return [u for u in users if wanted.intersection(u.departments)]
    named = set(chosen)
    return [u for u in users if u.union_id in named]


def fill(text: str, user: DirectoryUser, *, url: bool = False) -> str:
    """``text`` with ``{user}``, ``{email}`` and ``{local}`` replaced for ``user``."""
    values = {
        "{user}": user.union_id,
        "{email}": user.email,
        "{local}": user.email.partition("@")[0],
    }
    for name, value in values.items():
        text = text.replace(name, quote(value, safe="@") if url else value)
    return text


def _binding_of(template: BindingTemplate, user: DirectoryUser) -> Binding:
    caldav = template.caldav
    data = {
        "id": fill(template.id, user),
        "dingtalk_user": user.union_id,
        "caldav": {
            "url": fill(caldav.url, user, url=True),
            "username": caldav.username,
            "password": caldav.password,
            "timeout": caldav.timeout,
            "create": caldav.create,
        },
        "direction": template.direction,
        "conflict": template.conflict,
        "poll_interval": template.poll_interval,
        "concurrency": template.concurrency,
        "deletion_threshold": template.deletion_threshold,
        "window": template.window,
    }
    return Binding.model_validate(data)


def _entries(users: Iterable[DirectoryUser], problems: list[str]) -> tuple[DirectoryEntry, ...]:
    entries = []
    for user in users:
        try:
            entries.append(DirectoryEntry(union_id=user.union_id, email=user.email))
        except ValidationError:
            problems.append(f"directory user {user.union_id!r}: not a valid e-mail, left out")
    return tuple(entries)


def _url(binding: Binding) -> str:
    source = binding.caldav or binding.ics
    return str(source.url).rstrip("/") if source is not None else ""


def expand(tenant: Tenant, imported: OrgDirectory | None) -> Expansion:
    """The tenant as served: merged directory, static bindings, then templates' bindings."""
    problems: list[str] = []
    users = merged_users(tenant, imported)
    entries = _entries(users, problems)
    valid = {e.union_id for e in entries}
    users = tuple(u for u in users if u.union_id in valid)
    static_ids = {b.id for b in tenant.bindings}
    taken_ids, taken_urls = set(static_ids), {_url(b) for b in tenant.bindings}
    bindings, from_template = list(tenant.bindings), set()
    for index, template in enumerate(tenant.binding_templates):
        for user in selected(template, users, imported):
            where = f"binding_templates.{index} for {user.union_id!r}"
            try:
                binding = _binding_of(template, user)
            except ValidationError as exc:
                reason = exc.errors()[0]
                field = ".".join(str(p) for p in reason["loc"])
                problems.append(f"{where}: {field}: {reason['msg']}; left out")
                continue
            if binding.id in static_ids:
                continue  # the static binding of that id wins, silently (documented)
            if binding.id in taken_ids or _url(binding) in taken_urls:
                problems.append(f"{where}: id {binding.id!r} or its calendar is taken; left out")
                continue
            taken_ids.add(binding.id)
            taken_urls.add(_url(binding))
            bindings.append(binding)
            from_template.add(binding.id)
    effective = tenant.model_copy(update={"directory": entries, "bindings": tuple(bindings)})
    return Expansion(effective, users, frozenset(from_template), tuple(problems))


def expand_config(
    config: Config, imported: Mapping[str, OrgDirectory | None]
) -> tuple[Config, list[str]]:
    """``config`` with every tenant expanded (``imported``: tenant id -> its last import)."""
    tenants: dict[str, Tenant] = {}
    problems: list[str] = []
    for tenant_id, tenant in config.tenants.items():
        if tenant.directory_import is None and not tenant.binding_templates:
            tenants[tenant_id] = tenant
            continue
        out = expand(tenant, imported.get(tenant_id))
        tenants[tenant_id] = out.tenant
        problems += [f"{tenant_id}: {p}" for p in out.problems]
    return replace(config, tenants=MappingProxyType(tenants)), problems
