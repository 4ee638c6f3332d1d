"""deploy/k8s/ checked statically: Kubernetes schemas, shape, probes, selectors, security.

The manifests are validated with ``kubernetes-validate`` (the API's JSON schemas, shipped
in its wheel) in strict mode, against the oldest and the newest version it knows; the
probes are compared with the routes of the real webhook app and the ``--listen`` port of
the container's real command line.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from syncd.config import load_config
from syncd.webhook.app import create_app
from tests.integration import deploy_files as files
from tests.integration.deploy_checks import (
    fake_values,
    listen_port,
    required_variables,
    secret_names,
)

OLDEST = "1.25.0"  # HPA autoscaling/v2 and PDB policy/v1 are GA there


def _objects() -> list[tuple[str, dict[str, Any]]]:
    return list(files.k8s_documents())


def _app_get_routes() -> set[str]:
    """GET routes of the real webhook app, built on deploy/config."""
    config_dir = files.DEPLOY / "config"
    env = fake_values(required_variables(config_dir, secret_names()))
    app = create_app(load_config(config_dir, env))
    return {
        resource.canonical
        for resource in app.router.resources()
        for route in resource
        if route.method == "GET"
    }


@pytest.mark.parametrize("version", [OLDEST, kubernetes_validate.latest_version()])
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    """Every object validates strictly (no unknown field) for old and new Kubernetes."""
    objects = _objects()
    assert len(objects) >= 10
    for name, doc in objects:
        for key in ("apiVersion", "kind", "metadata"):
            assert key in doc, f"{name}: {key}"
        assert doc["metadata"].get("name"), name
        assert ("spec" in doc) or ("data" in doc) or ("stringData" in doc), name
        kubernetes_validate.validate(doc, version, strict=True)


def test_schema_check_is_not_vacuous() -> None:
    """A misspelt probe key is refused by the same validation."""
    (web,) = [
        d
        for _, d in _objects()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "syncd-web"
    ]
    text = yaml.safe_dump(web).replace("readinessProbe", "readinesProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(yaml.safe_load(text), OLDEST, strict=True)


def test_probes_hit_real_routes_on_the_listen_port() -> None:
    """Liveness hits /healthz, readiness /readyz, on the port the container's command serves."""
    routes = _app_get_routes()
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    checked = 0
    for where, container in files.k8s_syncd_containers():
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        argv = ("syncd", *container["args"])
        for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            probe = container[kind]["httpGet"]
            assert probe["path"] == path, where
            assert path in routes, where
            assert ports[probe["port"]] == listen_port(argv), where
            checked += 1
    assert checked == 4


def test_containers_are_locked_down_and_sized() -> None:
    """Non-root, read-only root fs, no privilege escalation, no capabilities, requests+limits."""
    for name, doc in _objects():
        if doc["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


def test_secrets_come_from_the_secret() -> None:
    """Every syncd container reads syncd-secrets, whose example names every ${NAME}."""
    for where, container in files.k8s_syncd_containers():
        assert container["envFrom"] == [{"secretRef": {"name": "syncd-secrets"}}], where
    (secret,) = [d for n, d in _objects() if n == "secret.example.yaml"]
    assert secret["stringData"]["SYNCD_REDIS_URL"] == "redis://syncd-redis:6379/0"


def test_selectors_and_targets_line_up() -> None:
    """Service, PDBs, HPA and Ingress point at what exists; the Service selects web pods only."""
    objects = {(d["kind"], d["metadata"]["name"]): d for _, d in _objects()}
    pods = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for (kind, name), d in objects.items()
        if kind in {"Deployment", "StatefulSet"}
    }

    def selected(selector: dict[str, str]) -> set[str]:
        return {n for n, labels in pods.items() if selector.items() <= labels.items()}

    service = objects[("Service", "syncd-web")]
    assert selected(service["spec"]["selector"]) == {"syncd-web"}
    (port,) = service["spec"]["ports"]
    web_ports = objects[("Deployment", "syncd-web")]["spec"]["template"]["spec"]["containers"][0][
        "ports"
    ]
    assert port["targetPort"] in {p["name"] for p in web_ports}
    for pdb in ("syncd-web", "syncd-worker"):
        sel = objects[("PodDisruptionBudget", pdb)]["spec"]["selector"]["matchLabels"]
        assert selected(sel) == {pdb}
    hpa = objects[("HorizontalPodAutoscaler", "syncd-worker")]["spec"]
    assert ("Deployment", hpa["scaleTargetRef"]["name"]) in objects
    assert hpa["minReplicas"] >= 2
    redis = objects[("Service", "syncd-redis")]
    assert selected(redis["spec"]["selector"]) == {"syncd-redis"}
    ingress = objects[("Ingress", "syncd-callbacks")]["spec"]
    ((path,),) = [r["http"]["paths"] for r in ingress["rules"]]
    assert path["path"] == "/callbacks/"  # only DingTalk's path is public
    assert path["backend"]["service"] == {"name": "syncd-web", "port": {"name": port["name"]}}


def test_in_cluster_redis_persists() -> None:
    """The StatefulSet's Redis runs AOF everysec, noeviction, on a PersistentVolumeClaim."""
    (redis,) = [d for _, d in _objects() if d["kind"] == "StatefulSet"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": pairs["--dir"]} in mounts
