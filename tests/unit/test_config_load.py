"""load_config on real files: every problem at once, each as FILE:LINE: key.path: message."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.config import load_config
from syncd.errors import ConfigError

AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
ENV = {
    "APP_SECRET": "app-secret-value",
    "CB_TOKEN": "callback-token-value",
    "CB_AES": AES,
    "DAV_PASSWORD": "dav-password-value",
}
TENANT = """\
id: acme
timezone: Asia/Shanghai
dingtalk:
  api_base: http://127.0.0.1:8090
  app_key: dingabc123
  app_secret: ${APP_SECRET}
  callback:
    token: ${CB_TOKEN}
    aes_key: ${CB_AES}
directory:
  - {union_id: u-alice, email: alice@acme.example}
  - union_id: u-bob
    email: bob@acme.example
bindings:
  - id: alice-work
    dingtalk_user: u-alice
    caldav:
      url: http://127.0.0.1:5232/alice/work/
      username: alice
      password: ${DAV_PASSWORD}
    poll_interval: 5m
  - id: bob-holidays
    dingtalk_user: u-bob
    ics: {url: https://example.org/holidays.ics, refresh: 2h}
"""


def write(root: Path, tenants: dict[str, str], settings: str | None = None) -> Path:
    """A config directory holding ``settings`` and the given tenant files."""
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    if settings is not None:
        (root / "syncd.yaml").write_text(settings)
    for name, text in tenants.items():
        (root / "tenants" / name).write_text(text)
    return root


def problems(root: Path, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The problems load_config reports for ``root``."""
    with pytest.raises(ConfigError) as info:
        load_config(root, ENV if environ is None else environ)
    return info.value.problems


def edit(old: str, new: str) -> str:
    """TENANT with one exact fragment replaced."""
    assert old in TENANT
    return TENANT.replace(old, new, 1)


def test_valid_directory_loads(tmp_path: Path) -> None:
    """A valid directory gives frozen settings and tenants with secrets resolved."""
    root = write(tmp_path, {"acme.yaml": TENANT}, "listen: 0.0.0.0:9000\n")
    config = load_config(root, ENV)
    tenant = config.tenants["acme"]
    assert config.settings.listen_port == 9000
    assert config.sources == {"acme": root / "tenants" / "acme.yaml"}
    assert tenant.dingtalk.app_secret.get_secret_value() == "app-secret-value"
    caldav = tenant.binding("alice-work").caldav
    assert caldav is not None
    assert caldav.password is not None
    assert caldav.password.get_secret_value() == "dav-password-value"
    assert tenant.binding("alice-work").poll_interval == 300.0
    ics = tenant.binding("bob-holidays").ics
    assert ics is not None
    assert ics.refresh == 7200.0


def test_empty_or_missing_tenants_dir_is_an_empty_config(tmp_path: Path) -> None:
    """No tenant files (or no tenants/ at all) is valid: nothing to sync yet."""
    assert load_config(write(tmp_path / "a", {}), {}).tenants == {}
    (tmp_path / "b").mkdir()
    assert load_config(tmp_path / "b", {}).tenants == {}


def test_missing_config_dir_is_an_error(tmp_path: Path) -> None:
    """A config directory that does not exist is a ConfigError."""
    assert problems(tmp_path / "nope") == (f"{tmp_path}/nope:0: (dir): config directory not found",)


def test_other_files_are_ignored(tmp_path: Path) -> None:
    """Only *.yaml / *.yml in tenants/ are tenants; notes and hidden files are not."""
    root = write(tmp_path, {"acme.yaml": TENANT, "README.txt": "x", ".draft.yaml": ": :"})
    assert list(load_config(root, ENV).tenants) == ["acme"]


ONE_PROBLEM = [
    pytest.param(
        "timezone: Asia/Shanghai",
        "timezone: Mars/Olympus",
        "2: timezone: unknown IANA time zone 'Mars/Olympus'",
        id="timezone",
    ),
    pytest.param(
        "api_base: http://127.0.0.1:8090",
        "api_base: ftp://127.0.0.1:8090",
        "4: dingtalk.api_base: must be an http:// or https:// URL with a host",
        id="url",
    ),
    pytest.param(
        "  app_key: dingabc123\n",
        "",
        "3: dingtalk.app_key: required key is missing",
        id="missing-key",
    ),
    pytest.param(
        "    poll_interval: 5m\n",
        "    poll_interval: 5m\n    pol_interval: 5m\n",
        "22: bindings.0.pol_interval: unknown key (did you mean 'poll_interval'?)",
        id="unknown-key",
    ),
    pytest.param(
        "id: acme\n",
        "id: acme\nflavour: x\n",
        "2: flavour: unknown key (allowed: id, timezone, dingtalk, directory, "
        "directory_import, bindings, binding_templates)",
        id="unknown-top-key",
    ),
    pytest.param(
        "    dingtalk_user: u-bob",
        "    dingtalk_user: u-carol",
        "23: bindings.1.dingtalk_user: 'u-carol' is not in the tenant's directory",
        id="user-not-in-directory",
    ),
    pytest.param(
        "  - id: bob-holidays\n    dingtalk_user: u-bob",
        "  - id: alice-work\n    dingtalk_user: u-bob",
        "22: bindings.1.id: duplicate id 'alice-work' (first at bindings.0)",
        id="duplicate-binding",
    ),
    pytest.param(
        "email: bob@acme.example",
        "email: Alice@ACME.example",
        "13: directory.1.email: duplicate email 'Alice@ACME.example' (first at directory.0)",
        id="duplicate-email",
    ),
    pytest.param(
        "ics: {url: https://example.org/holidays.ics, refresh: 2h}",
        "ics: {url: https://example.org/holidays.ics, refresh: 2h}\n    direction: both",
        "25: bindings.1.direction: an ics binding can only be to_dingtalk",
        id="ics-two-way",
    ),
    pytest.param(
        "    ics: {url: https://example.org/holidays.ics, refresh: 2h}\n",
        "",
        "22: bindings.1: a binding needs exactly one of caldav or ics",
        id="no-source",
    ),
    pytest.param(
        "ics: {url: https://example.org/holidays.ics",
        "ics: {url: http://127.0.0.1:5232/alice/work",
        "24: bindings.1.ics.url: same calendar as bindings.0",
        id="same-calendar-twice",
    ),
    pytest.param(
        "poll_interval: 5m",
        "poll_interval: 5 minutes",
        "21: bindings.0.poll_interval: expected a duration such as 30s, 5m, 1h or 1h30m,"
        " got '5 minutes'",
        id="duration",
    ),
    pytest.param(
        "    poll_interval: 5m\n",
        "    poll_interval: 5m\n    direction: sideways\n",
        "22: bindings.0.direction: Input should be 'both', 'to_caldav' or 'to_dingtalk'",
        id="enum",
    ),
    pytest.param(
        "timezone: Asia/Shanghai\n",
        "timezone: Asia/Shanghai\ntimezone: UTC\n",
        "3: timezone: duplicate key (first at line 2)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "bindings:\n",
        "bindings: [\n",
        "15: (file): YAML syntax: expected the node content, but found '-'",
        id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), ONE_PROBLEM)
def test_each_problem_has_file_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """Each kind of mistake is reported alone, at the line and key path where it was made."""
    root = write(tmp_path, {"acme.yaml": edit(old, new)})
    assert problems(root) == (f"{root}/tenants/acme.yaml:{expected}",)


def test_bad_aes_key_from_environment(tmp_path: Path) -> None:
    """A malformed EncodingAESKey is reported at its line, without the key itself."""
    root = write(tmp_path, {"acme.yaml": TENANT})
    found = problems(root, {**ENV, "CB_AES": "not-a-43-character-key"})
    assert found == (
        f"{root}/tenants/acme.yaml:9: dingtalk.callback.aes_key: "
        "EncodingAESKey must be 43 characters, got 22",
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Many mistakes in several files are all reported, ordered by file and line."""
    bad = edit("timezone: Asia/Shanghai", "timezone: Nowhere").replace(
        "dingtalk_user: u-bob", "dingtalk_user: u-zed"
    )
    root = write(tmp_path, {"acme.yaml": bad, "zeta.yaml": "id: zeta\n"}, "listen: nowhere\n")
    found = problems(root, {k: v for k, v in ENV.items() if k != "CB_TOKEN"})
    assert found == (
        f"{root}/syncd.yaml:1: listen: listen address must be HOST:PORT with a port 0-65535,"
        " got 'nowhere'",
        f"{root}/tenants/acme.yaml:2: timezone: unknown IANA time zone 'Nowhere'",
        f"{root}/tenants/acme.yaml:8: dingtalk.callback.token: "
        "environment variable CB_TOKEN is not set",
        f"{root}/tenants/acme.yaml:23: bindings.1.dingtalk_user: "
        "'u-zed' is not in the tenant's directory",
        f"{root}/tenants/zeta.yaml:1: dingtalk: required key is missing",
    )


def test_missing_variables_named_once_each(tmp_path: Path) -> None:
    """Without the environment, each ${NAME} is one problem at its line, nothing follows on."""
    root = write(tmp_path, {"acme.yaml": TENANT})
    prefix = f"{root}/tenants/acme.yaml"
    assert problems(root, {}) == (
        f"{prefix}:6: dingtalk.app_secret: environment variable APP_SECRET is not set",
        f"{prefix}:8: dingtalk.callback.token: environment variable CB_TOKEN is not set",
        f"{prefix}:9: dingtalk.callback.aes_key: environment variable CB_AES is not set",
        f"{prefix}:20: bindings.0.caldav.password: environment variable DAV_PASSWORD is not set",
    )


def test_environment_references(tmp_path: Path) -> None:
    """${NAME} works inside any string and more than once; $${ writes a literal ${."""
    text = edit("username: alice", "username: ${USER_PREFIX}-${USER_PREFIX}").replace(
        "password: ${DAV_PASSWORD}", "password: pa$${NOT_A_VAR}ss"
    )
    tenant = load_config(write(tmp_path, {"acme.yaml": text}), {**ENV, "USER_PREFIX": "al"})
    caldav = tenant.tenants["acme"].binding("alice-work").caldav
    assert caldav is not None
    assert caldav.password is not None
    assert caldav.username == "al-al"
    assert caldav.password.get_secret_value() == "pa${NOT_A_VAR}ss"


def test_bad_variable_reference(tmp_path: Path) -> None:
    """A malformed reference is reported rather than passed through as text."""
    root = write(tmp_path, {"acme.yaml": edit("${APP_SECRET}", "${APP SECRET}")})
    assert problems(root) == (
        f"{root}/tenants/acme.yaml:6: dingtalk.app_secret: bad variable reference ${{APP SECRET}}",
    )


def test_environment_values_never_in_messages(tmp_path: Path) -> None:
    """A secret that ends up in the wrong key is scrubbed from the message about that key."""
    root = write(tmp_path, {"acme.yaml": edit("Asia/Shanghai", "${APP_SECRET}")})
    (found,) = problems(root)
    assert "app-secret-value" not in found
    assert found == f"{root}/tenants/acme.yaml:2: timezone: unknown IANA time zone '***'"


def test_secrets_not_in_repr_of_loaded_config(tmp_path: Path) -> None:
    """repr of the whole loaded Config shows none of the environment's secrets."""
    config = load_config(write(tmp_path, {"acme.yaml": TENANT}), ENV)
    text = repr(config)
    assert "acme" in text
    for secret in ENV.values():
        assert secret not in text


def test_tenant_id_must_match_file_name(tmp_path: Path) -> None:
    """tenants/<id>.yaml: a file whose id differs from its name is refused at 'id'."""
    root = write(tmp_path, {"other.yaml": TENANT})
    assert problems(root) == (
        f"{root}/tenants/other.yaml:1: id: tenant id 'acme' must match the file name 'other.yaml'",
    )


def test_duplicate_tenant_ids_across_files(tmp_path: Path) -> None:
    """Two files defining one tenant id is an error in the second file."""
    root = write(tmp_path, {"acme.yaml": TENANT, "acme.yml": TENANT})
    assert problems(root) == (
        f"{root}/tenants/acme.yml:1: id: tenant 'acme' is already defined in "
        f"{root}/tenants/acme.yaml",
    )


def test_empty_tenant_file(tmp_path: Path) -> None:
    """An empty tenant file is a problem, not a silent no-op."""
    root = write(tmp_path, {"acme.yaml": "# nothing yet\n"})
    assert problems(root) == (
        f"{root}/tenants/acme.yaml:1: (file): the file is empty; a tenant needs id and dingtalk",
    )


def test_tenant_file_must_be_a_mapping(tmp_path: Path) -> None:
    """A YAML list at the top is reported against the whole file."""
    root = write(tmp_path, {"acme.yaml": "- id: acme\n"})
    (found,) = problems(root)
    assert found.startswith(f"{root}/tenants/acme.yaml:1: (file): Input should be a valid dict")


def test_merge_keys_share_settings(tmp_path: Path) -> None:
    """YAML anchors and merge keys work, and an explicit key overrides a merged one."""
    text = edit(
        "  - id: alice-work\n",
        "  - &base\n    id: alice-work\n",
    ).replace(
        "  - id: bob-holidays\n    dingtalk_user: u-bob\n"
        "    ics: {url: https://example.org/holidays.ics, refresh: 2h}\n",
        "  - <<: *base\n    id: alice-home\n    poll_interval: 1m\n"
        "    caldav: {url: http://127.0.0.1:5232/alice/home/}\n",
    )
    tenant = load_config(write(tmp_path, {"acme.yaml": text}), ENV).tenants["acme"]
    home = tenant.binding("alice-home")
    assert (home.dingtalk_user, home.poll_interval) == ("u-alice", 60.0)
    assert home.caldav is not None
    assert home.caldav.url.endswith("/home/")


def test_settings_file(tmp_path: Path) -> None:
    """syncd.yaml values parse: unquoted HH:MM stays a time (not YAML's base-60 integer)."""
    settings_text = (
        "redis_url: redis://:pw@10.0.0.5:6380/2\nlisten: '[::1]:8081'\nfull_reconcile_at: 04:30\n"
        "callback_max_skew: 10m\nlog: {format: console, level: WARNING}\n"
        "deletion_threshold: {max_count: 5, max_ratio: 0.1}\n"
    )
    settings = load_config(write(tmp_path, {}, settings_text), {}).settings
    assert settings.redis_url == "redis://:pw@10.0.0.5:6380/2"
    assert (settings.listen_host, settings.listen_port) == ("::1", 8081)
    assert settings.full_reconcile_at == time(4, 30)
    assert settings.callback_max_skew == 600.0
    assert (settings.log.format, settings.log.level) == ("console", "warning")
    assert settings.deletion_threshold.exceeded(6, 10) is True


def test_redis_url_environment_wins(tmp_path: Path) -> None:
    """SYNCD_REDIS_URL overrides redis_url (a Sentinel URL too); a bad one is reported
    against the variable."""
    root = write(tmp_path, {}, "redis_url: redis://127.0.0.1:6379/0\n")
    url = "redis://10.1.1.1:6379/3"
    assert load_config(root, {"SYNCD_REDIS_URL": url}).settings.redis_url == url
    assert problems(root, {"SYNCD_REDIS_URL": "http://x"}) == (
        "$SYNCD_REDIS_URL:1: redis_url: must be a redis://, rediss://, unix:// or "
        "redis+sentinel:// URL",
    )
    sentinel = "redis+sentinel://:pw@10.0.0.7:26379,10.0.0.8/syncd-master/2"
    assert load_config(root, {"SYNCD_REDIS_URL": sentinel}).settings.redis_url == sentinel
    assert problems(root, {"SYNCD_REDIS_URL": "redis+sentinel://10.0.0.7:x/m"}) == (
        "$SYNCD_REDIS_URL:1: redis_url: redis+sentinel URL: '10.0.0.7:x' is not HOST[:PORT]",
    )


def test_settings_problems_have_lines(tmp_path: Path) -> None:
    """Unknown and malformed settings are reported at their lines in syncd.yaml."""
    root = write(tmp_path, {}, "log:\n  format: xml\nworkers: 4\ncallback_max_body: 10\n")
    assert problems(root) == (
        f"{root}/syncd.yaml:2: log.format: Input should be 'json' or 'console'",
        f"{root}/syncd.yaml:3: workers: unknown key (allowed: redis_url, listen, log, "
        "callback_max_body, callback_max_skew, full_reconcile_at, deletion_threshold, "
        "poll_cadence, webdav_push, lock_ttl, shutdown_timeout)",
        f"{root}/syncd.yaml:4: callback_max_body: Input should be greater than or equal to 1024",
    )


def test_skip_invalid_tenants(tmp_path: Path) -> None:
    """With skip_invalid_tenants a broken tenant is left out and reported, the rest load."""
    good = TENANT.replace("id: acme", "id: good")
    root = write(tmp_path, {"bad.yaml": "id: bad\n", "good.yaml": good})
    with capture_logs() as logs:
        config = load_config(root, ENV, skip_invalid_tenants=True)
    assert list(config.tenants) == ["good"]
    assert config.problems == (f"{root}/tenants/bad.yaml:1: dingtalk: required key is missing",)
    assert {
        "event": "config_tenant_skipped",
        "problem": config.problems[0],
        "log_level": "warning",
    } in logs


def test_load_logs_one_line(tmp_path: Path) -> None:
    """A load logs config_loaded with counts; a failed one logs config.invalid."""
    root = write(tmp_path, {"acme.yaml": TENANT})
    with capture_logs() as logs:
        load_config(root, ENV)
        with pytest.raises(ConfigError):
            load_config(root, {})
    assert [(e["event"], e.get("tenants"), e.get("problems")) for e in logs] == [
        ("config_loaded", 1, None),
        ("config_invalid", None, 4),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: &x [1, *x]\n", "1: id.1: a recursive YAML alias"),
        ("id: !!python/object:os.system x\n", "1: id: YAML: could not determine a constructor"),
        ("id: acme\n? [a, b]\n: c\n", "2: (file): keys must be plain strings"),
    ],
)
def test_hostile_yaml_is_a_problem_not_a_crash(tmp_path: Path, text: str, expected: str) -> None:
    """Recursive aliases, Python tags and complex keys are reported at their line."""
    root = write(tmp_path, {"acme.yaml": text})
    assert any(p.startswith(f"{root}/tenants/acme.yaml:{expected}") for p in problems(root))
