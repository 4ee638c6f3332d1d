"""The tenant and settings models built directly: rules, defaults, helpers, secrecy."""

from __future__ import annotations

import copy
from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from syncd.config import (
    Binding,
    Config,
    DeletionThreshold,
    Settings,
    Tenant,
    settings_schema,
    tenant_schema,
)
from syncd.errors import ConfigError
from syncd.translate.context import Context

AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
SECRETS = ("app-secret-value", "callback-token-value", AES, "dav-password-value")

TENANT: dict[str, Any] = {
    "id": "acme",
    "timezone": "Asia/Shanghai",
    "dingtalk": {
        "api_base": "http://127.0.0.1:8090/",
        "app_key": "dingabc123",
        "app_secret": "app-secret-value",
        "callback": {"token": "callback-token-value", "aes_key": AES},
    },
    "directory": [
        {"union_id": "u-alice", "email": "alice@acme.example"},
        {"union_id": "u-bob", "email": "bob@acme.example"},
    ],
    "bindings": [
        {
            "id": "alice-work",
            "dingtalk_user": "u-alice",
            "caldav": {
                "url": "http://127.0.0.1:5232/alice/work/",
                "username": "alice",
                "password": "dav-password-value",
            },
        },
        {"id": "bob-holidays", "dingtalk_user": "u-bob", "ics": {"url": "https://e.org/h.ics"}},
    ],
}


def _tenant(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(TENANT)
    data.update(changes)
    return data


def _binding(index: int, **changes: Any) -> dict[str, Any]:
    data = _tenant()
    data["bindings"][index].update(changes)
    return data


def _messages(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as info:
        Tenant.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_valid_tenant_and_defaults() -> None:
    """A valid tenant validates; defaults fill direction, conflict, poll and refresh."""
    tenant = Tenant.model_validate(TENANT)
    work, holidays = tenant.bindings
    assert (work.direction, work.conflict, work.poll_interval) == ("both", "newest", 30.0)
    assert holidays.direction == "to_dingtalk"  # an ics binding is one-way by default
    assert holidays.ics is not None
    assert holidays.ics.refresh == 3600.0
    assert tenant.dingtalk.api_base == "http://127.0.0.1:8090"  # trailing slash dropped
    assert (work.kind, holidays.kind) == ("caldav", "ics")


def test_helpers_other_modules_call() -> None:
    """owner_key, binding(), directory_map() and context() give what callers need."""
    tenant = Tenant.model_validate(TENANT)
    assert tenant.owner_key == "dingabc123"
    assert tenant.binding("bob-holidays").dingtalk_user == "u-bob"
    assert tenant.directory_map() == {"u-alice": "alice@acme.example", "u-bob": "bob@acme.example"}
    context = tenant.context("alice-work")
    assert context == Context(directory=context.directory, user="u-alice", timezone="Asia/Shanghai")
    assert context.directory.union_id_of("BOB@acme.example") == "u-bob"
    assert tenant.dingtalk.callback.aes_key.get_secret_value() == AES


def test_owner_key_override() -> None:
    """callback.owner_key (e.g. a corpId for legacy subscriptions) wins over app_key."""
    data = _tenant()
    data["dingtalk"]["callback"]["owner_key"] = "dingcorp1"
    assert Tenant.model_validate(data).owner_key == "dingcorp1"


def test_unknown_binding_is_a_config_error() -> None:
    """Asking for a binding the tenant lacks is a ConfigError naming both."""
    with pytest.raises(ConfigError, match="tenant 'acme' has no binding 'nope'"):
        Tenant.model_validate(TENANT).binding("nope")


def test_models_are_frozen() -> None:
    """Configuration cannot be changed after loading."""
    tenant = Tenant.model_validate(TENANT)
    with pytest.raises(ValidationError, match="frozen"):
        tenant.timezone = "UTC"  # type: ignore[misc]


def test_secrets_never_in_repr_or_str() -> None:
    """repr/str of a tenant (and of its parts) show no secret value."""
    tenant = Tenant.model_validate(TENANT)
    for text in (repr(tenant), str(tenant), repr(tenant.dingtalk), str(tenant.bindings)):
        for secret in SECRETS:
            assert secret not in text


def test_secrets_never_in_validation_errors() -> None:
    """A direct validation failure does not echo its input (hide_input_in_errors)."""
    data = _tenant(timezone="Mars/Olympus")
    data["dingtalk"]["callback"]["aes_key"] = "short-but-secret-aes"
    data["dingtalk"]["app_secret"] = 12345  # wrong type: pydantic would show the input
    with pytest.raises(ValidationError) as info:
        Tenant.model_validate(data)
    assert "short-but-secret-aes" not in str(info.value)
    assert "dav-password-value" not in str(info.value)


def test_ics_binding_is_one_way() -> None:
    """An ics binding may only run to_dingtalk; another direction is refused at 'direction'."""
    assert _messages(_binding(1, direction="both")) == [
        (("bindings", 1, "direction"), "an ics binding can only be to_dingtalk")
    ]
    tenant = Tenant.model_validate(_binding(1, direction="to_dingtalk"))
    assert tenant.bindings[1].direction == "to_dingtalk"


def test_ics_binding_refuses_poll_interval() -> None:
    """poll_interval belongs to CalDAV; an ics feed is re-read every ics.refresh."""
    assert _messages(_binding(1, poll_interval="1m")) == [
        (("bindings", 1, "poll_interval"), "an ics binding is refreshed by ics.refresh")
    ]


def test_concurrency_defaults_to_four_and_stays_within_the_connection_pool() -> None:
    """``concurrency``: 4 unless set; 1..10 (the CalDAV client keeps 10 connections)."""
    assert Tenant.model_validate(_tenant()).bindings[0].concurrency == 4
    assert Tenant.model_validate(_binding(0, concurrency=10)).bindings[0].concurrency == 10
    for bad, message in ((0, "greater than or equal to 1"), (11, "less than or equal to 10")):
        ((where, text),) = _messages(_binding(0, concurrency=bad))
        assert where == ("bindings", 0, "concurrency")
        assert message in text


@pytest.mark.parametrize("sources", [{}, {"ics": {"url": "https://e.org/x.ics"}}])
def test_exactly_one_source(sources: dict[str, Any]) -> None:
    """A binding with neither caldav nor ics, or with both, is refused at the binding."""
    data = _tenant()
    data["bindings"][0].pop("caldav") if not sources else data["bindings"][0].update(sources)
    data["bindings"][0]["direction"] = "to_dingtalk"
    assert _messages(data) == [(("bindings", 0), "a binding needs exactly one of caldav or ics")]


def test_caldav_password_needs_username() -> None:
    """A CalDAV password without a username is a mistake."""
    data = _tenant()
    del data["bindings"][0]["caldav"]["username"]
    assert _messages(data) == [(("bindings", 0, "caldav"), "a password needs a username")]


def test_cross_entry_rules_enforced_on_direct_construction() -> None:
    """A tenant built in code obeys the same cross-entry rules as one loaded from a file."""
    data = _binding(1, dingtalk_user="u-carol")
    ((loc, message),) = _messages(data)
    assert loc == ()
    assert message == "bindings.1.dingtalk_user: 'u-carol' is not in the tenant's directory"


@pytest.mark.parametrize(
    ("deletions", "pairs", "held"),
    [(21, 40, True), (20, 40, False), (21, 42, False), (100, 1000, False), (3, 4, False)],
)
def test_deletion_threshold(deletions: int, pairs: int, held: bool) -> None:
    """Deletions are held only when above max_count AND above max_ratio of the pairs."""
    assert DeletionThreshold(max_count=20, max_ratio=0.5).exceeded(deletions, pairs) is held


def test_binding_threshold_overrides_settings() -> None:
    """Config.deletion_threshold prefers the binding's own threshold."""
    own = DeletionThreshold(max_count=1, max_ratio=0.0)
    tenant = Tenant.model_validate(_binding(0, deletion_threshold=own.model_dump()))
    config = Config(settings=Settings(), tenants={"acme": tenant})
    assert config.deletion_threshold(tenant.bindings[0]) == own
    assert config.deletion_threshold(tenant.bindings[1]) == Settings().deletion_threshold
    assert [(t.id, b.id) for t, b in config.bindings()] == [
        ("acme", "alice-work"),
        ("acme", "bob-holidays"),
    ]
    with pytest.raises(ConfigError, match="no tenant 'other'"):
        config.tenant("other")


def test_settings_defaults() -> None:
    """Every settings key is optional; the defaults are those documented in config/syncd.yaml."""
    settings = Settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert (settings.log.format, settings.log.level) == ("json", "info")
    assert settings.callback_max_body == 65536
    assert settings.callback_max_skew == 3600.0
    assert settings.full_reconcile_at == time(3, 0)
    assert "redis_url" not in repr(settings)  # it may carry a password


def test_tenant_schema_describes_the_file() -> None:
    """The tenant schema is JSON Schema 2020-12, forbids unknown keys and names every field."""
    schema = tenant_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "id",
        "timezone",
        "dingtalk",
        "directory",
        "bindings",
        "binding_templates",
    }
    assert "extra" in schema["$defs"]["DirectoryImport"]["properties"]
    assert set(schema["required"]) == {"id", "dingtalk"}
    binding = schema["$defs"]["Binding"]["properties"]
    assert binding["direction"]["enum"] == ["both", "to_caldav", "to_dingtalk"]
    assert binding["poll_interval"]["anyOf"][0]["pattern"]
    assert schema["$defs"]["Callback"]["properties"]["token"]["writeOnly"] is True
    assert "callback_max_skew" in settings_schema()["properties"]


def test_binding_model_is_exported() -> None:
    """Binding is importable from syncd.config for type hints elsewhere."""
    assert Binding.model_fields["direction"].default == "both"


def test_window_defaults_to_half_a_year_back_and_a_year_ahead() -> None:
    """Without a window key a binding lists DingTalk 183 days back and 365 days ahead."""
    window = Tenant.model_validate(TENANT).bindings[0].window
    assert (window.past_days, window.future_days) == (183, 365)
    assert window.past == 183 * 86400.0


@pytest.mark.parametrize(
    ("given", "days"),
    [
        ({"past": "11000d", "future": "4000d"}, (11000, 4000)),
        ({"past": "1d12h"}, (2, 365)),  # rounded up to whole days
        ({"future": 86400}, (183, 1)),  # a plain number is seconds
        ({"past": "36500d", "future": "36500d"}, (36500, 36500)),
    ],
)
def test_window_takes_durations(given: dict[str, Any], days: tuple[int, int]) -> None:
    """window.past / window.future take durations such as 183d and round up to days."""
    window = Tenant.model_validate(_binding(0, window=given)).bindings[0].window
    assert (window.past_days, window.future_days) == days


@pytest.mark.parametrize(
    ("given", "where", "message"),
    [
        ({"past": "36501d"}, "past", "at most 36500d"),
        ({"future": "0d"}, "future", "a duration must be longer than zero"),
        ({"future": "a year"}, "future", "expected a duration such as"),
        ({"ahead": "10d"}, "ahead", "Extra inputs are not permitted"),
    ],
)
def test_window_refuses_bad_values(given: dict[str, Any], where: str, message: str) -> None:
    """A window that is empty, over a century, not a duration or misspelt is refused by key."""
    [(loc, msg)] = _messages(_binding(0, window=given))
    assert loc == ("bindings", 0, "window", where)
    assert msg.startswith(message), msg
