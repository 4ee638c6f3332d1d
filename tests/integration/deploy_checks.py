"""Judgements shared by the deploy tests: parse a command line with the real CLI, read
syncd's metric registry, name the environment variables a config directory needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import click
from click.testing import CliRunner
from prometheus_client.metrics import MetricWrapperBase

from syncd import observability
from syncd.cli import main
from syncd.config import parse_listen
from syncd.webhook.see import SCRAPE_GAUGES
from tests.integration import deploy_files as files

# A valid value for each kind of secret the example config needs (the AES key must be
# 43 characters of base64: this is the official test vector's).
AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
MISSING = re.compile(r": environment variable (\w+) is not set$")


def parse_command(argv: tuple[str, ...]) -> click.Context:
    """Parse ``syncd SUBCOMMAND …`` with the real click CLI, invoking nothing.

    Raises ``click.UsageError`` (NoSuchCommand, NoSuchOption, BadParameter, …) exactly as
    ``syncd`` would at start-up; a ``--listen`` value must also be a valid HOST:PORT.
    """
    assert argv[0] == "syncd", argv
    if argv[1].startswith("-"):
        raise click.UsageError(f"options before the subcommand: {argv}")
    root = click.Context(main, info_name="syncd")
    name, command, rest = main.resolve_command(root, list(argv[1:]))
    assert name is not None
    assert command is not None
    ctx = command.make_context(name, rest, parent=root)
    listen = ctx.params.get("listen")
    if listen is not None:
        try:
            parse_listen(listen)
        except Exception as exc:
            raise click.BadParameter(str(exc), param_hint="--listen") from exc
    return ctx


def listen_port(argv: tuple[str, ...]) -> int:
    """The port of a served command's ``--listen HOST:PORT``."""
    listen = parse_command(argv).params["listen"]
    return parse_listen(listen)[1]


def registry() -> dict[str, set[str]]:
    """Every sample name syncd's registry can expose, with that metric's label names."""
    samples: dict[str, set[str]] = {}
    for value in vars(observability).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames)  # prometheus_client keeps them only here
        for family in value.describe():
            suffixes = {
                "counter": ("_total", "_created"),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",),
            }[family.type]
            for suffix in suffixes:
                extra = {"le"} if suffix == "_bucket" else set()
                samples[family.name + suffix] = labels | extra
    for name, gauge_labels in SCRAPE_GAUGES.items():  # read from Redis at scrape time
        samples[name] = set(gauge_labels)
    return samples


def run_check(config_dir: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    """``syncd check --config DIR`` through the real CLI with ``env``; an empty value unsets."""
    wanted = {"SYNCD_CONFIG": "", "SYNCD_REDIS_URL": "", **env}
    result = CliRunner().invoke(
        main,
        ["check", "--config", str(config_dir)],
        env={name: value or None for name, value in wanted.items()},
    )
    return result.exit_code, result.stdout, result.stderr


def required_variables(config_dir: Path, known: Mapping[str, str]) -> set[str]:
    """The ``${NAME}``s a config directory needs, as ``syncd check`` names them.

    ``known`` names variables that may be set in the process' environment; they are
    unset for this run, so every reference shows up as missing.
    """
    code, _, stderr = run_check(config_dir, dict.fromkeys(known, ""))
    assert code == 2, stderr
    names = {m[1] for line in stderr.splitlines() if (m := MISSING.search(line))}
    assert names, stderr
    return names


def fake_values(names: set[str]) -> dict[str, str]:
    """Plausible values for each variable: the AES key valid, the rest any text."""
    return {name: AES_KEY if name.endswith("AES_KEY") else f"test-{name.lower()}" for name in names}


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (systemd EnvironmentFile / compose env_file)."""
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def secret_names() -> dict[str, str]:
    """Every variable name the env example or the example k8s Secret mentions ("" values)."""
    (secret,) = [d for n, d in files.k8s_documents() if n == "secret.example.yaml"]
    names = set(env_file(files.DEPLOY / "syncd.env.example")) | set(secret["stringData"])
    return dict.fromkeys(names, "")
