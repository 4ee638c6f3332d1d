"""deploy/'s command lines run for real: probes, healthchecks, Redis and Radicale arguments.

The ``syncd web`` and ``syncd worker`` command lines of compose.yaml and the manifests run
as real processes (``--listen`` moved to a free loopback port) on deploy/config against a
private real Redis. The shipped config points at api.dingtalk.com and a CalDAV host; for
these runs its two URLs are rewritten to closed loopback ports, so the worker's polls fail
locally instead of leaving the machine. Every probe and healthcheck command is then run
against them, as are the Redis arguments (compose and the StatefulSet) and the "try"
profile's Radicale. The Dockerfile's install steps run in a fresh virtualenv (slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from syncd_lab.stack.ports import free_port
from tests.fixtures.redis_server import RedisServer, redis_binary, start_redis
from tests.integration import deploy_files as files
from tests.integration.deploy_checks import (
    fake_values,
    listen_port,
    required_variables,
    secret_names,
)

BIN = Path(sys.executable).parent


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (it is stopped and restarted)."""
    server = start_redis()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


def _loopback_config(root: Path) -> tuple[Path, dict[str, str]]:
    """deploy/config with its DingTalk and CalDAV URLs on closed loopback ports; its env."""
    config = root / "config"
    shutil.copytree(files.DEPLOY / "config", config)
    tenant = config / "tenants" / "acme.yaml"
    closed = f"http://127.0.0.1:{free_port()}"
    text = tenant.read_text().replace("  app_key:", f"  api_base: {closed}\n  app_key:", 1)
    text = re.sub(r"url: https://\S+", f"url: {closed}/alice/work/", text)
    tenant.write_text(text)
    return config, fake_values(required_variables(config, secret_names()))


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, json.loads(body) if path not in ("/metrics", "/status") else {
        "text": body.decode()
    }


def _wait_healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "syncd exited at start-up"
        try:
            if _get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "no /healthz within 30 s"
        time.sleep(0.2)


def _healthcheck(command: list[str], port: int) -> int:
    """Run a healthcheck's argv (after CMD) as the container would, aimed at ``port``."""
    argv = [sys.executable if part == "python" else part for part in command]
    argv = [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", part) for part in argv]
    return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match[1]) / 1024


@dataclass(frozen=True)
class Served:
    """What deploy/ expects of a served subcommand."""

    argv: tuple[str, ...]
    probes: list[str]
    healthchecks: list[list[str]]
    limits_mib: list[int]
    grace_s: int


def _served(subcommand: str) -> Served:
    """The compose/k8s/systemd expectations for ``syncd web`` or ``syncd worker``."""
    compose = files.compose()["services"]
    service = {"web": "web", "worker": "worker"}[subcommand]
    k8s = {c["args"][0]: c for _, c in files.k8s_syncd_containers()}[subcommand]
    unit = {"web": "syncd-web.service", "worker": "syncd-worker@.service"}[subcommand]
    k8s_limit = int(k8s["resources"]["limits"]["memory"].removesuffix("Mi"))
    unit_limit = int(files.unit_settings(unit)["MemoryMax"][0].removesuffix("M"))
    (pod,) = [
        d["spec"]["template"]["spec"]
        for _, d in files.k8s_documents()
        if d["metadata"]["name"] == {"web": "syncd-web", "worker": "syncd-worker"}[subcommand]
        and d["kind"] == "Deployment"
    ]
    graces = [
        pod["terminationGracePeriodSeconds"],
        int(files.unit_settings(unit)["TimeoutStopSec"][0]),
        int(compose[service]["stop_grace_period"].removesuffix("s")),
    ]
    assert compose[service]["healthcheck"]["test"][0] == "CMD"
    return Served(
        argv=("syncd", *compose[service]["command"]),
        probes=[k8s[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")],
        healthchecks=[files.dockerfile_healthcheck(), compose[service]["healthcheck"]["test"][1:]],
        limits_mib=[k8s_limit, unit_limit],
        grace_s=min(graces),
    )


@pytest.mark.parametrize("subcommand", ["web", "worker"])
def test_probes_and_healthchecks_answer(
    subcommand: str, private_redis: RedisServer, tmp_path: Path
) -> None:
    """Each probe path answers 200 and each healthcheck exits 0; idle memory is under half the
    limits; SIGTERM stops the process within the grace period the manifests give it."""
    expected = _served(subcommand)
    assert expected.argv[1] == subcommand
    assert listen_port(expected.argv) == 8080
    config, env = _loopback_config(tmp_path)
    port = free_port()
    cmd = [str(BIN / "syncd"), subcommand, "--listen", f"127.0.0.1:{port}"]
    full_env = {
        **os.environ,
        **env,
        "SYNCD_CONFIG": str(config),
        "SYNCD_REDIS_URL": private_redis.url,
    }
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(proc, port)
        assert _get(port, "/healthz") == (200, {"status": "ok"})
        assert _get(port, "/readyz") == (200, {"status": "ready", "tenants": 1})
        metrics = str(_get(port, "/metrics")[1]["text"])
        assert "syncd_reconciles_total" in metrics
        assert "syncd_redis_up 1.0" in metrics  # the gauges read from Redis at scrape time
        assert _get(port, "/status")[0] == 200
        for path in expected.probes:
            assert _get(port, path)[0] == 200, path
        for command in expected.healthchecks:
            assert _healthcheck(command, port) == 0, command
        time.sleep(1)
        rss = _rss_mib(proc.pid)
        for limit in expected.limits_mib:
            assert rss * 2 < limit, f"idle RSS {rss:.0f} MiB vs limit {limit} MiB"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=expected.grace_s) == 0
        assert time.monotonic() - started < expected.grace_s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_readiness_fails_while_redis_is_down(private_redis: RedisServer, tmp_path: Path) -> None:
    """With Redis gone, syncd web stays live (/healthz 200) but not ready (/readyz 503), so
    the readiness probe and compose's healthcheck fail; with Redis back, it is ready again."""
    config, env = _loopback_config(tmp_path)
    port = free_port()
    web = files.compose()["services"]["web"]["healthcheck"]["test"][1:]
    cmd = [str(BIN / "syncd"), "web", "--listen", f"127.0.0.1:{port}"]
    full_env = {
        **os.environ,
        **env,
        "SYNCD_CONFIG": str(config),
        "SYNCD_REDIS_URL": private_redis.url,
    }
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(proc, port)
        private_redis.stop()
        status, body = _get(port, "/readyz")
        assert (status, body["status"]) == (503, "unavailable")
        assert _healthcheck(web, port) != 0
        assert _get(port, "/healthz")[0] == 200
        assert _healthcheck(files.dockerfile_healthcheck(), port) == 0
        private_redis.start_again()
        deadline = time.monotonic() + 15
        while _get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "not ready again within 15 s of Redis' return"
            time.sleep(0.2)
        assert _healthcheck(web, port) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _redis_argument_sets() -> dict[str, list[str]]:
    (statefulset,) = [d for _, d in files.k8s_documents() if d["kind"] == "StatefulSet"]
    return {
        "compose": files.compose()["services"]["redis"]["command"],
        "k8s": statefulset["spec"]["template"]["spec"]["containers"][0]["args"],
    }


@pytest.mark.parametrize("source", ["compose", "k8s"])
def test_redis_arguments_persist(source: str, tmp_path: Path) -> None:
    """The Redis command line runs on a real redis-server: AOF everysec, snapshots, noeviction,
    and a write lands in the append-only file."""
    args = _redis_argument_sets()[source]
    assert args[0] == "redis-server"
    rest = args[1:]
    if "--dir" in rest:
        at = rest.index("--dir")
        del rest[at : at + 2]
    port = free_port()
    extra = [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
        "--daemonize",
        "no",
    ]
    proc = subprocess.Popen(
        [redis_binary(), *rest, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        got = {
            k: client.config_get(k)[k]
            for k in ("appendonly", "appendfsync", "maxmemory-policy", "save")
        }
        assert got == {
            "appendonly": "yes",
            "appendfsync": "everysec",
            "maxmemory-policy": "noeviction",
            "save": "3600 1 300 100",
        }
        client.set("syncd:deploy-test", "1")
        client.execute_command("BGREWRITEAOF")
        time.sleep(0.5)
        written = [p for p in tmp_path.rglob("appendonly*") if p.is_file() and p.stat().st_size > 0]
        assert written, list(tmp_path.rglob("*"))
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
