"""Configuration: process settings (``DIR/syncd.yaml``) and tenants (``DIR/tenants/*.yaml``).

Read once, at the edge, into frozen pydantic models (README.md "Configuration").
``${NAME}`` secrets are resolved here and only here, from the mapping passed to
:func:`load_config`; nothing in syncd reads ``os.environ`` below the CLI.

    config = load_config(Path("config"), os.environ)
    tenant = config.tenants["acme"]
    tenant.dingtalk.app_secret.get_secret_value()
"""

from __future__ import annotations

from typing import Any

from syncd.config._load import REDIS_URL_ENV, Config, load_config
from syncd.config._models import (
    Binding,
    CalDAVSource,
    Callback,
    DeletionThreshold,
    DingTalkApp,
    DirectoryEntry,
    IcsSource,
    LogSettings,
    PollCadence,
    Settings,
    Tenant,
    WebDavPush,
)
from syncd.config._types import parse_duration, parse_listen

__all__ = [
    "REDIS_URL_ENV",
    "Binding",
    "CalDAVSource",
    "Callback",
    "Config",
    "DeletionThreshold",
    "DingTalkApp",
    "DirectoryEntry",
    "IcsSource",
    "LogSettings",
    "PollCadence",
    "Settings",
    "Tenant",
    "WebDavPush",
    "load_config",
    "parse_duration",
    "parse_listen",
    "settings_schema",
    "tenant_schema",
]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def tenant_schema() -> dict[str, Any]:
    """The JSON Schema of a tenant file (what ``syncd schema`` prints).

    ``directory`` is a list or ``{source: dingtalk, refresh, extra}``; the model keeps the
    latter in ``directory_import`` (an internal field, not written in files).
    """
    schema = Tenant.model_json_schema(mode="validation")
    props = schema["properties"]
    props.pop("directory_import", None)
    listed = props["directory"]
    imported = schema["$defs"]["DirectoryImport"]
    imported["properties"]["extra"] = listed
    props["directory"] = {"anyOf": [listed, {"$ref": "#/$defs/DirectoryImport"}]}
    return {"$schema": _DRAFT, **schema}


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of ``syncd.yaml``."""
    return {"$schema": _DRAFT, **Settings.model_json_schema(mode="validation")}
