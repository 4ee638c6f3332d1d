"""syncd configuration directories written from plain data: ``syncd.yaml`` and one
``tenants/<id>.yaml`` per tenant, the layout ``syncd.config.load_config`` reads.

:func:`tenant` and :func:`binding` build the mappings the demo, the test fixtures and the
benchmarks need; anything else a caller wants goes in as more keys. Sequences are indented
under their key, so a test may append one more list item to a file's last list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump(data: Mapping[str, Any]) -> str:
    """``data`` as block-style YAML, keys in the order given."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def write_config_dir(
    root: Path,
    settings: Mapping[str, Any],
    tenants: Iterable[Mapping[str, Any]],
    *,
    header: str = "",
) -> Path:
    """Write ``root/syncd.yaml`` from ``settings`` and ``root/tenants/<id>.yaml`` for each
    tenant, each starting with ``header`` (a comment); returns ``root``."""
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "syncd.yaml").write_text(header + dump(settings))
    for data in tenants:
        (root / "tenants" / f"{data['id']}.yaml").write_text(header + dump(data))
    return root


def tenant(
    tenant_id: str,
    dingtalk: Mapping[str, Any],
    bindings: Iterable[Mapping[str, Any]],
    *,
    directory: Iterable[tuple[str, str]] = (),
    timezone: str = "Asia/Shanghai",
) -> dict[str, Any]:
    """A tenant mapping; ``directory`` pairs are ``(union_id, email)``. Bindings come last."""
    return {
        "id": tenant_id,
        "timezone": timezone,
        "dingtalk": dict(dingtalk),
        "directory": [{"union_id": uid, "email": email} for uid, email in directory],
        "bindings": [dict(b) for b in bindings],
    }


def dingtalk(
    api_base: str, app_key: str, app_secret: str, *, token: str, aes_key: str
) -> dict[str, Any]:
    """A tenant's ``dingtalk:`` mapping (the app's credentials and callback secrets)."""
    return {
        "api_base": api_base,
        "app_key": app_key,
        "app_secret": app_secret,
        "callback": {"token": token, "aes_key": aes_key},
    }


def binding(
    binding_id: str,
    dingtalk_user: str,
    caldav_url: str,
    *,
    auth: tuple[str, str] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A binding of ``dingtalk_user`` to the calendar at ``caldav_url``; ``auth`` is the
    CalDAV ``(username, password)``; ``settings`` are more binding keys (``direction``...)."""
    caldav: dict[str, Any] = {"url": caldav_url}
    if auth is not None:
        caldav |= {"username": auth[0], "password": auth[1]}
    return {"id": binding_id, "dingtalk_user": dingtalk_user, "caldav": caldav, **settings}
