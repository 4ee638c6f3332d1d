"""Runtime errors as an operator sees them: one clean line each, JSON logs all JSON.

Real processes of the installed ``syncd`` script against a real Redis and the sandbox
(served by the test's event loop), with the CalDAV server or Redis a closed port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import redis.asyncio as aredis
from arq.connections import ArqRedis

from syncd.cli._root import redis_origin
from syncd.config import load_config
from syncd_lab.stack.ports import free_port
from tests.fixtures.processes import SyncdProcess, start_syncd
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.spine import write_config

SYNCD = str(Path(sys.executable).parent / "syncd")
REPRS = ("object at 0x", "urllib3", "MaxRetryError", "NewConnectionError", "Traceback")


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``syncd ARGV`` to the end: exit code, stdout, stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = await asyncio.create_subprocess_exec(
        SYNCD,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**base, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_caldav_refused_is_one_clean_line(
    sandbox: SandboxHandle, redis_url: str, tmp_path: Path
) -> None:
    """`syncd sync` against a CalDAV server that refuses connections: exit 1, and the
    failure is said once on stderr, as 'connection refused', without library reprs."""
    port = free_port()
    calendar = f"http://127.0.0.1:{port}/alice/work/"
    root = write_config(tmp_path / "cfg", sandbox, calendar, redis_url)
    code, stdout, stderr = await run("sync", "acme", "--config", str(root))
    assert code == 1, stderr
    assert stdout == ""
    mentions = [line for line in stderr.splitlines() if f"127.0.0.1:{port}" in line]
    assert mentions == [
        f"syncd: acme/alice-work: SourceUnavailable: CalDAV list {calendar}: connection refused"
    ], stderr
    assert not [r for r in REPRS if r in stderr], stderr


async def test_redis_error_names_where_the_url_came_from(tmp_path: Path) -> None:
    """Redis unreachable: one line naming the URL (password hidden) and its origin,
    SYNCD_REDIS_URL when set, else redis_url in DIR/syncd.yaml."""
    root = tmp_path / "cfg"
    (root / "tenants").mkdir(parents=True)
    yaml_port, env_port = free_port(), free_port()
    (root / "syncd.yaml").write_text(f"redis_url: redis://127.0.0.1:{yaml_port}/0\n")

    env_url = f"redis://ops:s3cret@127.0.0.1:{env_port}/2"
    code, _, stderr = await run("status", "--config", str(root), env={"SYNCD_REDIS_URL": env_url})
    assert code == 1
    assert stderr.splitlines() == [
        "syncd: StoreUnavailable: redis unavailable during connect at "
        f"redis://ops:***@127.0.0.1:{env_port}/2 (from SYNCD_REDIS_URL): connection refused"
    ]
    code, _, stderr = await run("--config", str(root), "replay")
    assert code == 1
    assert stderr.splitlines() == [
        "syncd: StoreUnavailable: redis unavailable during connect at "
        f"redis://127.0.0.1:{yaml_port}/0 (from redis_url in {root}/syncd.yaml): "
        "connection refused"
    ]


def test_redis_origin_of_the_default(tmp_path: Path) -> None:
    """With neither SYNCD_REDIS_URL nor redis_url, the message says it is the default and
    where to set it."""
    (tmp_path / "tenants").mkdir()
    config = load_config(tmp_path, {})
    assert redis_origin(config, str(tmp_path), {}) == (
        "redis://127.0.0.1:6379/0 (the default; set redis_url in "
        f"{tmp_path}/syncd.yaml or SYNCD_REDIS_URL)"
    )


def _json_config(root: Path, sandbox: SandboxHandle, redis_url: str, calendar: str) -> Path:
    write_config(root, sandbox, calendar, redis_url)
    (root / "syncd.yaml").write_text(
        f"redis_url: {redis_url}\nlog: {{format: json, level: info}}\nshutdown_timeout: 6s\n"
    )
    return root


def _all_json(worker: SyncdProcess) -> list[dict[str, object]]:
    lines = [line for line in worker.text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        entry = json.loads(line)  # fails the test on any line that is not JSON
        assert {"event", "level", "timestamp"} <= set(entry), line
        parsed.append(entry)
    return parsed


async def test_worker_output_is_json_lines_arq_included(
    sandbox: SandboxHandle,
    redis_url: str,
    redis_client: aredis.Redis,
    tmp_path: Path,
    syncd_reaper: None,
) -> None:
    """With JSON logging every line a worker writes is one JSON object: its own events,
    a CalDAV failure (one reconcile_failed per try, with the clean reason), and arq's
    own warnings (a job naming an unknown function), rendered by the same structlog."""
    calendar = f"http://127.0.0.1:{free_port()}/alice/work/"
    root = _json_config(tmp_path / "cfg", sandbox, redis_url, calendar)
    worker = await start_syncd("worker", root, log_dir=tmp_path)
    await worker.wait_logged("worker_started", within=30)
    pool = ArqRedis(connection_pool=redis_client.connection_pool)
    await pool.enqueue_job("no_such_function", _job_id="h-cli-unknown")
    await worker.wait_for(
        lambda: any(e.get("logger") == "arq.worker" for e in worker.events()), 30, "arq line"
    )
    await worker.wait_logged("reconcile_failed", within=30)
    worker.send(signal.SIGTERM)
    assert await worker.exited(within=20) == 0
    entries = _all_json(worker)
    arq = [e for e in entries if e.get("logger") == "arq.worker"]
    assert "no_such_function" in str(arq[0]["event"])
    failed = [e for e in entries if e["event"] == "reconcile_failed"]
    assert failed[0]["message"] == f"CalDAV list {calendar}: connection refused"
    assert not [r for r in REPRS if r in worker.text()]


async def test_worker_without_redis_names_the_url_once(
    sandbox: SandboxHandle, tmp_path: Path, syncd_reaper: None
) -> None:
    """A worker started while Redis is down logs one redis_lost line (JSON) with the
    reason and which Redis, from where."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    root = _json_config(tmp_path / "cfg", sandbox, url, "http://127.0.0.1:9/alice/work/")
    worker = await start_syncd("worker", root, log_dir=tmp_path)
    await worker.wait_logged("redis_lost", within=30)
    await asyncio.sleep(3)  # the worker keeps retrying meanwhile: still one line
    worker.send(signal.SIGTERM)
    await worker.exited(within=20)
    (lost,) = [e for e in _all_json(worker) if e["event"] == "redis_lost"]
    assert lost["error"] == "connection refused"
    assert lost["redis"] == f"{url} (from redis_url in {root}/syncd.yaml)"
