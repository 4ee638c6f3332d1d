"""deploy/ checked without a container engine: command lines, configuration, units, linters.

Every ``syncd …`` command line in the Dockerfile, compose.yaml, the Kubernetes manifests,
the systemd units and docs/operating.md is parsed by the real click CLI; the shipped
configuration goes through the real ``syncd check``; the Dockerfile, compose file and
manifests go through hadolint, the compose-spec schema and the Kubernetes schemas (all
shipped in wheels, offline); the units through ``systemd-analyze verify``.
``test_deploy_runtime.py`` runs the same command lines and probes for real.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from tests.integration import deploy_files as files
from tests.integration.deploy_checks import (
    env_file,
    fake_values,
    parse_command,
    required_variables,
    run_check,
    secret_names,
)

BIN = Path(sys.executable).parent
ENV_EXAMPLE = files.DEPLOY / "syncd.env.example"


def _secret_keys() -> set[str]:
    (secret,) = [d for name, d in files.k8s_documents() if name == "secret.example.yaml"]
    return set(secret["stringData"])


def test_every_syncd_command_line_parses() -> None:
    """Each syncd command line in deploy/ and the guide is a real subcommand with real flags."""
    lines = files.all_argv()
    sources = {line.where.split()[0].split(":")[0] for line in lines}
    assert {"deploy/Dockerfile", "compose.yaml", "docs/operating.md"} <= sources
    assert any(s.startswith("k8s/") for s in sources)
    assert any(s.startswith("systemd/") for s in sources)
    for line in lines:
        try:
            parse_command(line.argv)
        except click.UsageError as exc:
            pytest.fail(f"{line.where}: {' '.join(line.argv)}: {exc.format_message()}")


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("syncd", "serve"), "No such command"),
        (("syncd", "web", "--bind", "0.0.0.0:8080"), "No such option"),
        (("syncd", "web", "--listen", "8080"), "HOST:PORT"),
        (("syncd", "--config", "/etc/syncd", "web"), "before the subcommand"),
    ],
)
def test_command_line_check_refuses_bad_lines(argv: tuple[str, ...], problem: str) -> None:
    """The checker above is not vacuous: unknown commands, flags and addresses are refused."""
    with pytest.raises(click.UsageError, match=problem):
        parse_command(argv)


def test_shipped_config_passes_check_with_the_documented_secrets() -> None:
    """deploy/config needs exactly the variables the env example and k8s Secret provide."""
    example = env_file(ENV_EXAMPLE)
    needed = required_variables(files.DEPLOY / "config", secret_names())
    assert set(example) == needed
    assert _secret_keys() == needed | {"SYNCD_REDIS_URL"}
    code, out, err = run_check(files.DEPLOY / "config", fake_values(needed))
    assert (code, out, err) == (0, "ok: 1 tenant, 1 binding\n", "")


def test_placeholder_secrets_are_refused() -> None:
    """The env example as shipped does not pass: its AES key placeholder is refused."""
    code, out, err = run_check(files.DEPLOY / "config", env_file(ENV_EXAMPLE))
    assert (code, out) == (2, "")
    assert [line.split(": ")[1] for line in err.splitlines()] == ["dingtalk.callback.aes_key"]


def test_k8s_config_maps_mount_deploy_config(tmp_path: Path) -> None:
    """The ConfigMaps hold deploy/config verbatim; mounted as the pods mount them, check passes."""
    maps = {
        d["metadata"]["name"]: d["data"]
        for _, d in files.k8s_documents()
        if d["kind"] == "ConfigMap"
    }
    config = files.DEPLOY / "config"
    assert maps["syncd-settings"] == {"syncd.yaml": (config / "syncd.yaml").read_text()}
    tenants = {p.name: p.read_text() for p in (config / "tenants").glob("*.yaml")}
    assert maps["syncd-tenants"] == tenants
    for where, container in files.k8s_syncd_containers():
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/syncd/syncd.yaml"]["subPath"] == "syncd.yaml", where
        assert "subPath" not in mounts["/etc/syncd/tenants"], where
        assert {e["name"]: e["value"] for e in container["env"]}["SYNCD_CONFIG"] == "/etc/syncd"
    (tmp_path / "tenants").mkdir()
    (tmp_path / "syncd.yaml").write_text(maps["syncd-settings"]["syncd.yaml"])
    for key, text in maps["syncd-tenants"].items():
        (tmp_path / "tenants" / key).write_text(text)
    code, out, _ = run_check(tmp_path, fake_values(_secret_keys() - {"SYNCD_REDIS_URL"}))
    assert (code, out) == (0, "ok: 1 tenant, 1 binding\n")


def test_dockerfile_passes_hadolint_and_runs_as_non_root() -> None:
    """hadolint finds nothing; the final stage is a non-root user with a HEALTHCHECK."""
    result = subprocess.run(
        [str(BIN / "hadolint"), str(files.DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
    final = [i for i in files.dockerfile() if i.stage == 1]
    (user,) = [i.value for i in final if i.keyword == "USER"]
    assert not user.startswith(("0", "root"))
    assert "SYNCD_CONFIG=/etc/syncd" in " ".join(i.value for i in final if i.keyword == "ENV")
    copies = [i.value for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/syncd /opt/syncd"]  # same path: the venv's shebangs hold
    installs = [i.value for i in files.dockerfile() if "pip install" in i.value]
    assert installs == ["/opt/syncd/bin/pip install --no-compile ."]  # no [dev] extras


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    """The same hadolint run flags a Dockerfile with a classic mistake (no USER, latest tag)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install syncd\nCMD syncd web\n")
    result = subprocess.run(
        [str(BIN / "hadolint"), str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.mark.parametrize("broken", [None, "restart: unless-stopped", "read_only: true"])
def test_compose_matches_the_compose_spec(tmp_path: Path, broken: str | None) -> None:
    """compose.yaml validates against the compose-spec schema; a wrong value does not."""
    text = (files.DEPLOY / "compose.yaml").read_text()
    if broken is not None:
        key, value = broken.split(": ")
        assert broken in text
        text = text.replace(broken, f"{key}: [{value}]", 1)
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    cmd = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert (result.returncode == 0) is (broken is None), result.stdout + result.stderr


def test_compose_services_fit_together() -> None:
    """Redis persists (AOF everysec, a volume); workers scale; only web publishes, on loopback."""
    data = files.compose()
    services = data["services"]
    redis_args = services["redis"]["command"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"
    assert redis_args[redis_args.index("--appendfsync") + 1] == "everysec"
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert set(data["volumes"]) == {"redis-data", "radicale-data"}
    for name, svc in files.compose_services_running_syncd().items():
        assert svc["env_file"] == [{"path": "./syncd.env", "required": True}], name
        assert svc["environment"]["SYNCD_REDIS_URL"] == "redis://redis:6379/0", name
        assert svc["volumes"] == ["./config:/etc/syncd:ro"], name
        assert svc["depends_on"] == {"redis": {"condition": "service_healthy"}}, name
        assert "healthcheck" in services["redis"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    published = {n: s["ports"] for n, s in services.items() if "ports" in s}
    assert published == {"web": ["127.0.0.1:8080:8080"], "radicale": ["127.0.0.1:5232:5232"]}
    assert services["radicale"]["profiles"] == ["try"]


def test_systemd_units_verify_and_are_hardened(tmp_path: Path) -> None:
    """systemd-analyze verify accepts both units silently; each carries the hardening asked for."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd"
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/syncd").mkdir()
    (root / "etc/syncd/syncd.env").write_text(ENV_EXAMPLE.read_text())
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    fake = root / files.SYSTEMD_BIN.lstrip("/")
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    units = {
        "syncd-web.service": "syncd-web.service",
        "syncd-worker@.service": f"syncd-worker@{files.WORKER_INSTANCE}.service",
    }
    for source, installed in units.items():
        shutil.copy(files.SYSTEMD / source, root / "etc/systemd/system" / installed)
    cmd = [
        analyze,
        "verify",
        "--man=no",
        f"--root={root}",
        *(f"/etc/systemd/system/{u}" for u in units.values()),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    for unit in units:
        settings = files.unit_settings(unit)
        expected = {
            "DynamicUser": ["yes"],
            "NoNewPrivileges": ["yes"],
            "ProtectSystem": ["strict"],
            "PrivateTmp": ["yes"],
            "CapabilityBoundingSet": [""],
            "Restart": ["on-failure"],
            "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
            "EnvironmentFile": ["/etc/syncd/syncd.env"],
        }
        assert {k: settings.get(k) for k in expected} == expected, unit
        assert settings["MemoryMax"][0].endswith("M"), unit
        assert settings["ExecStartPre"] == [f"{files.SYSTEMD_BIN} check --config /etc/syncd"], unit
    assert "--listen 127.0.0.1:%i" in files.unit_settings("syncd-worker@.service")["ExecStart"][0]


def test_systemd_verify_is_not_vacuous(tmp_path: Path) -> None:
    """A misspelt hardening value makes systemd-analyze speak (which the test above forbids)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze
    unit = tmp_path / "syncd-web.service"
    unit.write_text(
        (files.SYSTEMD / "syncd-web.service")
        .read_text()
        .replace("ProtectSystem=strict", "ProtectSystem=strictly")
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert "protect system value" in result.stderr


def test_kustomization_lists_existing_files_and_no_secret() -> None:
    """kustomization.yaml applies files that exist, never the example Secret or Ingress."""
    kustomization = yaml.safe_load((files.K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (files.K8S / resource).is_file(), resource
    assert not {"secret.example.yaml", "ingress.example.yaml"} & set(kustomization["resources"])
