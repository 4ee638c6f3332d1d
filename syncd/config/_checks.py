"""Rules that span several entries of one tenant file, checked on raw (unvalidated) data.

They run on raw data so the loader reports them together with every field error; the
:class:`~syncd.config.Tenant` model runs them too, so a directly built tenant obeys them.
Entries of the wrong shape are skipped here: field validation reports those.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def _entries(data: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    items = data.get(key)
    if isinstance(items, list | tuple):
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                yield index, item


def _unique(
    data: Mapping[str, Any], section: str, field: str, fold: bool = False
) -> tuple[dict[str, int], list[Problem]]:
    """First index of each distinct string ``section[*].field``; a problem per repeat."""
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for index, entry in _entries(data, section):
        value = entry.get(field)
        if not isinstance(value, str):
            continue
        key = value.lower() if fold else value
        if key in seen:
            problems.append(
                (
                    (section, index, field),
                    f"duplicate {field} {value!r} (first at {section}.{seen[key]})",
                )
            )
        else:
            seen[key] = index
    return seen, problems


def _source_url(binding: Mapping[str, Any]) -> str | None:
    for kind in ("caldav", "ics"):
        source = binding.get(kind)
        if isinstance(source, Mapping) and isinstance(source.get("url"), str):
            return str(source["url"]).rstrip("/")
    return None


def _shared_sources(data: Mapping[str, Any]) -> list[Problem]:
    """Two bindings of one calendar would fight over it (and duplicate its events)."""
    owners: dict[str, int] = {}
    problems: list[Problem] = []
    for index, binding in _entries(data, "bindings"):
        url = _source_url(binding)
        if url is None:
            continue
        if url in owners:
            kind = "caldav" if isinstance(binding.get("caldav"), Mapping) else "ics"
            problems.append(
                (("bindings", index, kind, "url"), f"same calendar as bindings.{owners[url]}")
            )
        else:
            owners[url] = index
    return problems


def consistency_problems(data: Any) -> list[Problem]:
    """Duplicate union ids, e-mails, binding ids or calendars; users not in the directory.

    With ``directory: {source: dingtalk}`` only the ``extra`` entries are checked here.
    """
    if not isinstance(data, Mapping):
        return []
    directory = data.get("directory")
    imported = isinstance(directory, Mapping) or data.get("directory_import") is not None
    if isinstance(directory, Mapping):  # {source: dingtalk, extra: [...]}: check the extras
        data = {**data, "directory": directory.get("extra") or ()}
    users, problems = _unique(data, "directory", "union_id")
    problems += _unique(data, "directory", "email", fold=True)[1]
    problems += _unique(data, "bindings", "id")[1]
    problems += _shared_sources(data)
    for index, binding in _entries(data, "bindings"):
        user = binding.get("dingtalk_user")
        # An imported directory is only known at run time: the binding waits for its user.
        if isinstance(user, str) and user and user not in users and not imported:
            problems.append(
                (("bindings", index, "dingtalk_user"), f"{user!r} is not in the tenant's directory")
            )
    return problems
