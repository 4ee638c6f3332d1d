"""The product and the lab as they are packaged: what the wheel holds, and the CLI with
and without the lab installed.

The product wheel is built with ``pip wheel`` from this checkout. "Without the lab" is a
real environment, not a patched one: a directory of links to every entry of this venv's
site-packages except the lab's (its ``.dist-info`` and its editable-install ``.pth``),
used as the only site directory of a ``python -S`` child.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SYNCD = str(Path(sys.executable).with_name("syncd"))
LAB_COMMANDS = ("demo", "sandbox")

# Runs syncd's CLI (or imports every syncd module) with argv[1] as the only site dir.
LAUNCHER = """\
import importlib, importlib.util, pkgutil, site, sys
site.addsitedir(sys.argv.pop(1))
if sys.argv[1:] == ["--import-all"]:
    import syncd
    names = [m.name for m in pkgutil.walk_packages(syncd.__path__, "syncd.")]
    for name in names:
        importlib.import_module(name)
    print(len(names), importlib.util.find_spec("syncd_lab"))
else:
    from syncd.cli import main
    sys.argv[0] = "syncd"
    main()
"""


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, env=env, cwd="/"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The product wheel, built from this checkout as a release would build it."""
    out = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT))
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("syncd-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_the_service_only(wheel: zipfile.ZipFile) -> None:
    """Only ``syncd/`` and its dist-info; no sandbox, demo or lab module in it."""
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"syncd", "syncd-0.1.0.dist-info"}, tops
    modules = [n for n in names if n.endswith(".py")]
    assert "syncd/cli/_root.py" in modules
    moved = ("sandbox", "demo", "syncd_lab")
    assert [n for n in modules if any(part in n for part in moved)] == []


def test_wheel_requires_no_radicale_and_registers_no_plugin(wheel: zipfile.ZipFile) -> None:
    """radicale and the lab are no requirement of the product (not even an extra); the
    product's own entry points are its console script only."""
    metadata = wheel.read("syncd-0.1.0.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any("aiohttp" in line for line in requires)
    assert [line for line in requires if "radicale" in line or "syncd-lab" in line] == []
    entry_points = wheel.read("syncd-0.1.0.dist-info/entry_points.txt").decode()
    assert "syncd = syncd.cli:main" in entry_points
    assert "syncd.commands" not in entry_points


def _site_without_lab(tmp_path: Path) -> Path:
    view = tmp_path / "site"
    view.mkdir()
    hidden = 0
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("syncd_lab", "_editable_impl_syncd_lab")):
            hidden += 1
            continue
        (view / entry.name).symlink_to(entry)
    assert hidden == 2, "the lab is not installed the way make install installs it"
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    return view


def test_syncd_works_without_the_lab(tmp_path: Path) -> None:
    """Without the lab every syncd module imports, the service commands are there, and
    ``demo``/``sandbox`` do not exist (exit 2, click's usage error)."""
    view = _site_without_lab(tmp_path)
    launcher = str(tmp_path / "launcher.py")
    imported = _run(sys.executable, "-S", launcher, str(view), "--import-all")
    assert imported.returncode == 0, imported.stderr
    count, lab_spec = imported.stdout.split()
    assert int(count) > 50, imported.stdout
    assert lab_spec == "None", imported.stdout
    helped = _run(sys.executable, "-S", launcher, str(view), "--help")
    assert helped.returncode == 0, helped.stderr
    assert "  check " in helped.stdout
    assert "  worker " in helped.stdout
    assert [c for c in LAB_COMMANDS if f"  {c} " in helped.stdout] == [], helped.stdout
    assert helped.stderr == ""
    for command in LAB_COMMANDS:
        missing = _run(sys.executable, "-S", launcher, str(view), command, "--help")
        assert missing.returncode == 2, missing.stdout
        assert f"No such command '{command}'" in missing.stderr


def test_lab_commands_load_lazily() -> None:
    """With the lab installed ``syncd --help`` lists its commands, importing only their
    small CLI modules: neither the sandbox nor the demo is loaded to print help."""
    probe = (
        "import sys\nfrom syncd.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('syncd_lab')))"
    )
    done = _run(sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    *help_lines, last = done.stdout.strip().splitlines()
    for command in LAB_COMMANDS:
        assert any(line.startswith(f"  {command} ") for line in help_lines), done.stdout
    loaded = ast.literal_eval(last)
    assert "syncd_lab.cli.demo" in loaded
    heavy = [m for m in loaded if m.startswith(("syncd_lab.sandbox", "syncd_lab.demo"))]
    assert heavy == [], loaded


def test_a_broken_plugin_costs_one_line(tmp_path: Path) -> None:
    """A plugin whose module is missing, and one that is not a click command: each is one
    stderr line naming it, left out of the commands; everything else still works."""
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[syncd.commands]\nbroken = syncd_no_such_module:command\nnotacommand = json:dumps\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    helped = _run(SYNCD, "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    lines = helped.stderr.splitlines()
    assert len(lines) == 2, helped.stderr
    assert "'broken'" in lines[0]
    assert "syncd_no_such_module" in lines[0]
    assert "'notacommand'" in lines[1]
    assert "not a command" in lines[1]
    assert "  check " in helped.stdout
    assert "  sandbox " in helped.stdout
    assert "broken" not in helped.stdout
    assert "notacommand" not in helped.stdout
    ran = _run(SYNCD, "broken", env=env)
    assert ran.returncode == 2
    assert "No such command 'broken'" in ran.stderr


def test_sandbox_refuses_a_bad_listen_address() -> None:
    """``syncd sandbox --listen`` parses HOST:PORT as syncd's ``listen`` does: a usage error."""
    seed = ROOT / "tests" / "fixtures" / "sandbox_seed.yaml"
    done = _run(SYNCD, "sandbox", "--listen", "8090", "--seed", str(seed))
    assert done.returncode == 2
    assert "HOST:PORT" in done.stderr
    assert "--listen" in done.stderr


def test_compose_try_radicale_has_its_own_image() -> None:
    """The syncd image installs the service only (its context holds no lab); compose's
    "try" Radicale is built from radicale.Dockerfile, which hadolint passes and which pins
    the Radicale versions the lab runs."""
    deploy = ROOT / "deploy"
    text = (deploy / "Dockerfile").read_text().splitlines()
    dockerfile = "\n".join(line for line in text if not line.startswith("#"))
    assert "lab" not in (deploy / "Dockerfile.dockerignore").read_text()
    assert "COPY syncd ./syncd" in dockerfile
    assert "radicale" not in dockerfile.lower()
    service = yaml.safe_load((deploy / "compose.yaml").read_text())["services"]["radicale"]
    assert service["build"] == {"context": ".", "dockerfile": "radicale.Dockerfile"}
    hadolint = Path(sys.executable).with_name("hadolint")
    linted = _run(str(hadolint), str(deploy / "radicale.Dockerfile"))
    assert (linted.returncode, linted.stdout) == (0, "")
    lab = tomllib.loads((ROOT / "lab" / "pyproject.toml").read_text())["project"]
    (pinned,) = [d.split("#")[0].strip() for d in lab["dependencies"] if "radicale" in d]
    assert f'"{pinned}"' in (deploy / "radicale.Dockerfile").read_text()
