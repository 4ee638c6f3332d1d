"""The image's build steps and the "try" profile's Radicale, run on this machine.

No container engine runs here, so the Dockerfile's build stage is replayed: its COPY
sources are copied into a scratch build directory, its RUN lines run there with the image's
virtualenv path moved into the temporary directory, and the result must be an installed
(not editable) syncd without the dev extras. compose.yaml's Radicale command runs with its
address and storage moved to loopback and a temporary directory, and the calendar the
guide tells the operator to create is created the same way.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd_lab.stack.ports import free_port
from tests.integration import deploy_files as files

BIN = Path(sys.executable).parent
IMAGE_VENV = "/opt/syncd"


def _build_stage() -> list[files.Instruction]:
    return [i for i in files.dockerfile() if i.stage == 0]


def _replay(tmp_path: Path) -> Path:
    """Run the build stage's COPY and RUN steps; returns the virtualenv they made."""
    venv = tmp_path / "venv"
    (workdir,) = [i.value for i in _build_stage() if i.keyword == "WORKDIR"]
    context = tmp_path / workdir.lstrip("/")
    context.mkdir(parents=True)
    env = dict(os.environ)
    for step in _build_stage():
        if step.keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(step.value)))
        elif step.keyword == "COPY":
            *sources, dest = shlex.split(step.value)
            target = context / dest
            for source in sources:
                origin = files.ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(origin, target)
        elif step.keyword == "RUN":
            command = step.value.replace(IMAGE_VENV, str(venv))
            command = command.replace("python -m venv", f"{sys.executable} -m venv")
            subprocess.run(["sh", "-c", command], cwd=context, env=env, check=True, timeout=900)
    return venv


@pytest.mark.slow
def test_dockerfile_install_steps_make_a_working_venv(tmp_path: Path) -> None:
    """The build stage's own steps install syncd (not editable, no dev extras) into a venv
    whose `syncd` command has the serving subcommands the deploy files use."""
    run_lines = [i.value for i in _build_stage() if i.keyword == "RUN"]
    assert any("pip install" in line for line in run_lines)
    venv = _replay(tmp_path)
    help_text = subprocess.run(
        [str(venv / "bin" / "syncd"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for subcommand in ("web", "worker", "run", "check"):
        assert f"  {subcommand} " in help_text
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import syncd; print(syncd.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()
    assert where.startswith(str(venv)), where  # installed into the venv, not the source tree
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "syncd==0.1.0" in installed
    for dev_only in ("pytest", "mypy", "ruff", "hypothesis", "xandikos", "radicale", "syncd-lab"):
        assert f"{dev_only}==" not in installed, dev_only


def test_try_profile_radicale_serves_and_takes_a_calendar(tmp_path: Path) -> None:
    """compose's Radicale command line starts, its healthcheck passes, and the guide's
    MKCALENDAR creates the calendar a binding then points at."""
    service = files.compose()["services"]["radicale"]
    assert service["entrypoint"] == ["radicale"]
    port = free_port()
    args = [
        f"127.0.0.1:{port}"
        if a == "0.0.0.0:5232"
        else str(tmp_path)
        if a.startswith("/var/lib/syncd")
        else a
        for a in service["command"]
    ]
    assert f"127.0.0.1:{port}" in args
    assert str(tmp_path) in args
    proc = subprocess.Popen(
        [str(BIN / "radicale"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        check = [
            sys.executable if p == "python" else p.replace("127.0.0.1:5232", f"127.0.0.1:{port}")
            for p in service["healthcheck"]["test"][1:]
        ]
        deadline = time.monotonic() + 20
        while subprocess.run(check, capture_output=True, check=False).returncode != 0:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "Radicale did not become healthy"
            time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        auth = {"Authorization": "Basic YWxpY2U6YW55"}  # alice:any, as in the guide
        conn.request("MKCALENDAR", "/alice/work/", headers=auth)
        assert conn.getresponse().status == 201
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
