"""Readers for the files under ``deploy/``: the command lines, probes and queries they hold.

Shared by ``test_deploy.py`` (static checks) and ``test_deploy_runtime.py`` (the same
command lines run for real). Nothing here judges a file; it only takes it apart.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
DASHBOARD = DEPLOY / "grafana" / "syncd-dashboard.json"
SYSTEMD_BIN = "/opt/syncd/bin/syncd"
WORKER_INSTANCE = "9101"  # stands for %i in syncd-worker@.service


@dataclass(frozen=True)
class CommandLine:
    """One ``syncd …`` command line found in a deploy file (``argv[0] == "syncd"``)."""

    where: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    stage: int
    keyword: str
    value: str


def dockerfile() -> list[Instruction]:
    """deploy/Dockerfile's instructions; ``stage`` counts FROM lines from 0."""
    logical: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        stage += keyword == "FROM"
        found.append(Instruction(stage, keyword, value.strip()))
    return found


def docker_exec_form(value: str) -> list[str]:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    start = value.index("[")
    parsed = json.loads(value[start:])
    assert isinstance(parsed, list), value
    return [str(part) for part in parsed]


def dockerfile_argv() -> CommandLine:
    """ENTRYPOINT + CMD of the final stage: what the image runs by default."""
    last = max(i.stage for i in dockerfile())
    final = {i.keyword: i.value for i in dockerfile() if i.stage == last}
    argv = docker_exec_form(final["ENTRYPOINT"]) + docker_exec_form(final["CMD"])
    return CommandLine("deploy/Dockerfile ENTRYPOINT+CMD", tuple(argv))


def dockerfile_healthcheck() -> list[str]:
    """The HEALTHCHECK's command (exec form), without the leading CMD."""
    (check,) = [i.value for i in dockerfile() if i.keyword == "HEALTHCHECK"]
    return docker_exec_form(check[check.index("CMD") :])


def compose() -> dict[str, Any]:
    """deploy/compose.yaml with YAML anchors and merge keys resolved."""
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def compose_services_running_syncd() -> dict[str, dict[str, Any]]:
    """Compose services whose container runs the image's ``syncd`` entrypoint."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if svc.get("image") == "syncd:local" and "entrypoint" not in svc
    }


def compose_argv() -> Iterator[CommandLine]:
    """``syncd`` + command of every compose service that runs syncd."""
    for name, svc in compose_services_running_syncd().items():
        yield CommandLine(f"compose.yaml services.{name}", ("syncd", *svc["command"]))


def k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in deploy/k8s/*.yaml (not the kustomization)."""
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path.name, doc


def k8s_syncd_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file:Deployment, container)`` for every container running the syncd image."""
    for name, doc in k8s_documents():
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if "/syncd:" in container["image"]:
                yield f"k8s/{name} {doc['metadata']['name']}", container


def k8s_argv() -> Iterator[CommandLine]:
    """The command line of every syncd container (the image's ENTRYPOINT is ``syncd``)."""
    for where, container in k8s_syncd_containers():
        command = container.get("command", ["syncd"])
        yield CommandLine(where, (*command, *container.get("args", [])))


def systemd_exec_lines() -> Iterator[CommandLine]:
    """ExecStart/ExecStartPre of the units, as ``syncd …`` (``%i`` = a worker port)."""
    for path in sorted(SYSTEMD.glob("*.service")):
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in {"ExecStart", "ExecStartPre"}:
                argv = shlex.split(value.replace("%i", WORKER_INSTANCE))
                assert argv[0] == SYSTEMD_BIN, f"{path.name}: {line}"
                yield CommandLine(f"systemd/{path.name} {key}", ("syncd", *argv[1:]))


def unit_settings(name: str) -> dict[str, list[str]]:
    """``Key -> [values]`` of a unit's [Service] section (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def docs_argv() -> Iterator[CommandLine]:
    """``syncd …`` lines inside fenced shell blocks of docs/operating.md."""
    fenced = False
    for number, line in enumerate((ROOT / "docs" / "operating.md").read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        text = line.strip().removeprefix("$ ")
        if fenced and text.startswith("syncd "):
            argv = shlex.split(text, comments=True)
            yield CommandLine(f"docs/operating.md:{number}", tuple(argv))


def all_argv() -> list[CommandLine]:
    """Every syncd command line the deploy files and the operator's guide contain."""
    return [
        dockerfile_argv(),
        *compose_argv(),
        *k8s_argv(),
        *systemd_exec_lines(),
        *docs_argv(),
    ]


def probe_url(command: list[str]) -> tuple[int, str]:
    """``(port, path)`` of the ``http://127.0.0.1:PORT/PATH`` a healthcheck command opens."""
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\"\s]*)", " ".join(command))
    assert match is not None, command
    return int(match[1]), match[2]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """``(metric names, label names)`` a PromQL expression refers to.

    Strings, ranges, Grafana variables and numbers are dropped; identifiers followed by
    ``(`` are functions or aggregations; what remains outside braces is a metric name.
    """
    text = re.sub(r"\$\{?\w+\}?", "", expr)
    labels: set[str] = set()
    for group in _GROUPING.findall(text):
        labels |= {part.strip() for part in group.split(",") if part.strip()}
    text = _GROUPING.sub(" ", text)
    for matchers in _MATCHERS.findall(_STRING.sub('""', text)):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = _MATCHERS.sub(" ", _STRING.sub('""', text))
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?", " ", text)
    metrics = {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}
    return metrics, labels
