"""``syncd check`` and ``syncd schema`` through the real command line (click's CliRunner)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "config"
SHIPPED_ENV = {
    "ACME_APP_SECRET": "s3cret-for-tests",
    "ACME_CALLBACK_TOKEN": "tok-for-tests",
    "ACME_CALLBACK_AES_KEY": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "ALICE_DAV_PASSWORD": "alice-dav-pw",
}
UNSET = dict.fromkeys([*SHIPPED_ENV, "SYNCD_REDIS_URL", "SYNCD_CONFIG"])
PROBLEM = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<key>\S+): (?P<message>.+)$")


def _line_of(path: Path, needle: str) -> int:
    """1-based number of the only line of ``path`` containing ``needle``."""
    (number,) = [n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    return number


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner with stdout and stderr kept apart."""
    return CliRunner()


def test_shipped_config_passes_with_its_variables(runner: CliRunner) -> None:
    """config/ as shipped is valid once its documented variables are set: one line, exit 0."""
    result = runner.invoke(main, ["check", "--config", str(SHIPPED)], env={**UNSET, **SHIPPED_ENV})
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok: 1 tenant, 1 binding\n", "")


def test_shipped_config_names_missing_variables(runner: CliRunner) -> None:
    """Without its variables, check exits 2 and names each one at its file and line."""
    result = runner.invoke(main, ["check", "--config", str(SHIPPED)], env=UNSET)
    acme = SHIPPED / "tenants" / "acme.yaml"
    expected = [
        f"{acme}:{_line_of(acme, '${ACME_APP_SECRET}')}: dingtalk.app_secret: "
        "environment variable ACME_APP_SECRET is not set",
        f"{acme}:{_line_of(acme, '${ACME_CALLBACK_TOKEN}')}: dingtalk.callback.token: "
        "environment variable ACME_CALLBACK_TOKEN is not set",
        f"{acme}:{_line_of(acme, '${ACME_CALLBACK_AES_KEY}')}: dingtalk.callback.aes_key: "
        "environment variable ACME_CALLBACK_AES_KEY is not set",
        f"{acme}:{_line_of(acme, '${ALICE_DAV_PASSWORD}')}: bindings.0.caldav.password: "
        "environment variable ALICE_DAV_PASSWORD is not set",
    ]
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected


def test_config_dir_from_environment(runner: CliRunner) -> None:
    """SYNCD_CONFIG names the directory when --config is not given."""
    env = {**UNSET, **SHIPPED_ENV, "SYNCD_CONFIG": str(SHIPPED)}
    result = runner.invoke(main, ["check"], env=env)
    assert (result.exit_code, result.stdout) == (0, "ok: 1 tenant, 1 binding\n")


def test_invalid_config_one_problem_per_line(runner: CliRunner, tmp_path: Path) -> None:
    """Every problem is one stderr line FILE:LINE: key.path: message; nothing on stdout."""
    (tmp_path / "tenants").mkdir()
    (tmp_path / "syncd.yaml").write_text("listen: 8080\nlog: {format: xml}\n")
    (tmp_path / "tenants" / "acme.yaml").write_text("id: acme\ntimezone: Mars/Base\n")
    result = runner.invoke(main, ["check", "--config", str(tmp_path)], env=UNSET)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2
    assert result.stdout == ""
    assert [PROBLEM.match(line) is not None for line in lines] == [True] * 4
    assert [(m["line"], m["key"]) for m in map(PROBLEM.match, lines) if m] == [
        ("1", "listen"),
        ("2", "log.format"),
        ("1", "dingtalk"),
        ("2", "timezone"),
    ]


def test_missing_config_dir(runner: CliRunner, tmp_path: Path) -> None:
    """A config directory that does not exist is exit 2 with one line."""
    result = runner.invoke(main, ["check", "--config", str(tmp_path / "absent")], env=UNSET)
    assert (result.exit_code, result.stderr) == (
        2,
        f"{tmp_path}/absent:0: (dir): config directory not found\n",
    )


def test_empty_config_dir_is_valid(runner: CliRunner, tmp_path: Path) -> None:
    """An empty directory is a valid configuration with nothing to sync."""
    result = runner.invoke(main, ["check", "--config", str(tmp_path)], env=UNSET)
    assert (result.exit_code, result.stdout) == (0, "ok: 0 tenants, 0 bindings\n")


def test_no_secret_in_any_output(runner: CliRunner, tmp_path: Path) -> None:
    """A secret placed in the wrong key does not reach the terminal: it is shown as ***."""
    (tmp_path / "tenants").mkdir()
    (tmp_path / "syncd.yaml").write_text("listen: ${ACME_APP_SECRET}\n")
    env = {**UNSET, **SHIPPED_ENV}
    result = runner.invoke(main, ["check", "--config", str(tmp_path)], env=env)
    assert result.exit_code == 2
    assert "s3cret-for-tests" not in result.stdout + result.stderr
    assert (
        result.stderr == f"{tmp_path}/syncd.yaml:1: listen: listen address must be HOST:PORT"
        " with a port 0-65535, got '***'\n"
    )


def test_schema_prints_tenant_json_schema(runner: CliRunner) -> None:
    """syncd schema prints a JSON Schema of the tenant file that covers the shipped example."""
    result = runner.invoke(main, ["schema"])
    schema = json.loads(result.stdout)
    assert result.exit_code == 0
    assert schema["title"] == "Tenant"
    assert {"id", "timezone", "dingtalk", "directory", "bindings"} == set(schema["properties"])
    caldav = schema["$defs"]["CalDAVSource"]["properties"]
    assert {"url", "username", "password", "timeout", "create"} == set(caldav)


def test_schema_of_settings(runner: CliRunner) -> None:
    """syncd schema --settings prints the schema of syncd.yaml."""
    result = runner.invoke(main, ["schema", "--settings"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "Settings"


def test_installed_console_script(tmp_path: Path) -> None:
    """The installed `syncd` script exits 0/2 as the contract says, from a real process."""
    script = Path(sys.executable).parent / "syncd"
    (tmp_path / "tenants").mkdir()
    ok = subprocess.run(
        [str(script), "check", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    bad = subprocess.run(
        [str(script), "check", "--config", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stdout) == (0, "ok: 0 tenants, 0 bindings\n")
    assert (bad.returncode, bad.stderr) == (
        2,
        f"{tmp_path}/nope:0: (dir): config directory not found\n",
    )
