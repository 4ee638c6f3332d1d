"""``--config DIR`` and ``--debug`` before or after the subcommand, for every command.

The matrix runs the real command group in-process (click's CliRunner parses argv exactly
as the console script does); a few cases run the installed ``syncd`` script too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.cli._root import COMMANDS, register_subcommands

SYNCD = str(Path(sys.executable).parent / "syncd")
SHIPPED = Path(__file__).resolve().parents[2] / "config"
SHIPPED_ENV = {
    "ACME_APP_SECRET": "s3cret-for-tests",
    "ACME_CALLBACK_TOKEN": "tok-for-tests",
    "ACME_CALLBACK_AES_KEY": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "ALICE_DAV_PASSWORD": "alice-dav-pw",
}
# Commands that read the configuration (a missing DIR is exit 2, naming DIR); their
# extra arguments.
CONFIG_COMMANDS = {
    "check": [],
    "status": [],
    "conflicts": [],
    "replay": [],
    "sync": ["acme"],
    "directory": ["acme"],
    "web": [],
    "worker": [],
    "run": [],
}
HELP_ONLY = ["schema", "sandbox", "demo"]  # take both options, read no configuration
PLUGINS = {"sandbox", "demo"}  # the lab's commands (entry points), not in COMMANDS


def _both_ways(command: str, options: list[str], rest: list[str]) -> list[list[str]]:
    """argv with the options after the subcommand, and before it."""
    return [[command, *rest, *options], [*options, command, *rest]]


def _invoke(argv: list[str], env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, argv, prog_name="syncd", env={"SYNCD_CONFIG": None, **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


def test_every_command_is_listed() -> None:
    """COMMANDS (what --help lists without importing) names every command of syncd's own,
    with the first paragraph of its own docstring, so the lazy listing cannot drift."""
    register_subcommands()
    assert set(COMMANDS) == set(main.commands)
    for name, (module, short) in COMMANDS.items():
        command = main.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"syncd.cli.{module}"
        assert (command.help or "").split("\n\n")[0].split() == short.split(), name
    assert set(CONFIG_COMMANDS) | set(HELP_ONLY) == set(COMMANDS) | PLUGINS


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_config_before_or_after(command: str, tmp_path: Path) -> None:
    """A missing config DIR is reported the same, exit 2, whichever side --config is on."""
    missing = tmp_path / "nowhere"
    outcomes = {
        tuple(argv): _invoke(argv)
        for argv in _both_ways(command, ["--config", str(missing)], CONFIG_COMMANDS[command])
    }
    expected = f"{missing}:0: (dir): config directory not found\n"
    for argv, (code, stdout, stderr) in outcomes.items():
        assert (code, stdout) == (2, ""), argv
        assert stderr == expected, argv


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_debug_before_or_after(command: str, tmp_path: Path) -> None:
    """--debug on either side turns the one-line error into the exception (a traceback)."""
    missing = ["--config", str(tmp_path / "nowhere")]
    for argv in (
        [command, *CONFIG_COMMANDS[command], *missing, "--debug"],
        ["--debug", *missing, command, *CONFIG_COMMANDS[command]],
        ["--debug", command, *CONFIG_COMMANDS[command], *missing],
    ):
        result = CliRunner().invoke(main, argv, env={"SYNCD_CONFIG": None})
        assert type(result.exception).__name__ == "ConfigError", argv
        assert result.stderr == "", argv  # raised, not printed as a line


@pytest.mark.parametrize("command", HELP_ONLY)
def test_options_accepted_by_commands_without_config(command: str, tmp_path: Path) -> None:
    """schema, sandbox and demo take --config and --debug on either side as well."""
    options = ["--config", str(tmp_path), "--debug"]
    for argv in ([command, *options, "--help"], [*options, command, "--help"]):
        code, stdout, _ = _invoke(argv)
        assert code == 0, argv
        assert stdout.startswith(f"Usage: syncd {command} "), argv


def test_schema_and_sandbox_honour_debug_before(tmp_path: Path) -> None:
    """The group's --debug reaches commands that ignore --config: a missing seed file is one
    line without it, the exception with it (before or after)."""
    seed = ["--seed", str(tmp_path / "no-seed.yaml")]
    code, _, stderr = _invoke(["sandbox", *seed])
    assert code == 2  # a bad seed is bad configuration
    assert stderr.count("\n") == 1
    assert "no-seed.yaml" in stderr
    for argv in (["--debug", "sandbox", *seed], ["sandbox", *seed, "--debug"]):
        result = CliRunner().invoke(main, argv)
        assert result.exception is not None, argv
        assert not isinstance(result.exception, SystemExit), argv
    assert _invoke(["--debug", "schema"])[0] == 0


def test_resolution_order(tmp_path: Path) -> None:
    """After the subcommand wins over before it, which wins over SYNCD_CONFIG, which wins
    over ./config."""
    missing = str(tmp_path / "nowhere")
    env: dict[str, str | None] = {**SHIPPED_ENV}
    assert _invoke(["--config", missing, "check", "--config", str(SHIPPED)], env)[0] == 0
    assert _invoke(["--config", str(SHIPPED), "check", "--config", missing], env)[0] == 2
    assert _invoke(["--config", str(SHIPPED), "check"], {**env, "SYNCD_CONFIG": missing})[0] == 0
    code, _, stderr = _invoke(["check"], {**env, "SYNCD_CONFIG": missing})
    assert (code, stderr) == (2, f"{missing}:0: (dir): config directory not found\n")


def test_installed_script_both_ways(tmp_path: Path) -> None:
    """The console script: `syncd --config DIR --debug check` and `syncd check --config DIR`
    both validate DIR; `syncd --debug status` with a missing DIR raises (traceback)."""
    env = {"PATH": "/usr/bin:/bin", **SHIPPED_ENV}
    for argv in (
        ["--config", str(SHIPPED), "--debug", "check"],
        ["check", "--config", str(SHIPPED)],
    ):
        done = subprocess.run([SYNCD, *argv], capture_output=True, text=True, env=env, check=False)
        assert (done.returncode, done.stdout) == (0, "ok: 1 tenant, 1 binding\n"), done.stderr
    missing = str(tmp_path / "nowhere")
    done = subprocess.run(
        [SYNCD, "--debug", "--config", missing, "status"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert f"ConfigError: {missing}:0: (dir): config directory not found" in done.stderr
