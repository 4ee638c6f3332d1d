"""Reading ``DIR/syncd.yaml`` and ``DIR/tenants/*.yaml`` into one frozen :class:`Config`.

The only I/O of the package. Every problem in every file is collected and reported at
once, each as ``FILE:LINE: key.path: message``; values read from the environment never
appear in a message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog

from syncd.config._checks import consistency_problems
from syncd.config._models import Binding, DeletionThreshold, Settings, Tenant
from syncd.config._problems import Problem, problem, validate
from syncd.config._yaml import Document, Loc, YamlSyntaxError, parse
from syncd.errors import ConfigError

log = structlog.get_logger(__name__)

REDIS_URL_ENV = "SYNCD_REDIS_URL"


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Config:
    """Everything read from a config directory: process settings and tenants by id.

    ``sources`` maps each tenant id to the file it came from. ``problems`` lists the
    problems of tenant files left out by ``load_config(..., skip_invalid_tenants=True)``.
    """

    settings: Settings
    tenants: Mapping[str, Tenant] = field(default_factory=_empty)
    sources: Mapping[str, Path] = field(default_factory=_empty)
    problems: tuple[str, ...] = ()

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant ``tenant_id``; :class:`ConfigError` if there is none."""
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise ConfigError(f"no tenant {tenant_id!r} in the configuration") from None

    def bindings(self) -> Iterator[tuple[Tenant, Binding]]:
        """Every binding of every tenant, tenant by tenant."""
        for tenant in self.tenants.values():
            for binding in tenant.bindings:
                yield tenant, binding

    def binding(self, tenant_id: str, binding_id: str) -> Binding:
        """The binding ``binding_id`` of tenant ``tenant_id`` (an index built once per
        Config); :class:`ConfigError` if there is none."""
        found = self._binding_index.get((tenant_id, binding_id))
        if found is None:
            return self.tenant(tenant_id).binding(binding_id)  # raises the precise error
        return found

    def user_bindings(self, tenant_id: str, dingtalk_user: str) -> tuple[str, ...]:
        """The ids of the tenant's bindings of one DingTalk user, in configuration order
        (an index built once per Config)."""
        return self._user_index.get((tenant_id, dingtalk_user), ())

    @cached_property
    def _binding_index(self) -> Mapping[tuple[str, str], Binding]:
        return {(t.id, b.id): b for t, b in self.bindings()}

    @cached_property
    def _user_index(self) -> Mapping[tuple[str, str], tuple[str, ...]]:
        index: dict[tuple[str, str], list[str]] = {}
        for tenant, binding in self.bindings():
            index.setdefault((tenant.id, binding.dingtalk_user), []).append(binding.id)
        return {key: tuple(ids) for key, ids in index.items()}

    def deletion_threshold(self, binding: Binding) -> DeletionThreshold:
        """The binding's own deletion threshold, else the process-wide one."""
        return binding.deletion_threshold or self.settings.deletion_threshold


def load_config(
    config_dir: Path, environ: Mapping[str, str], *, skip_invalid_tenants: bool = False
) -> Config:
    """Read and validate a config directory; :class:`ConfigError` lists every problem.

    ``environ`` resolves ``${NAME}`` references and ``SYNCD_REDIS_URL`` (pass ``os.environ``
    at the edge; nothing else is read from the environment). With ``skip_invalid_tenants``
    a tenant file with problems is left out (its problems go to ``Config.problems`` and the
    log) instead of failing the whole load; problems of ``syncd.yaml`` always fail it.
    """
    if not config_dir.is_dir():
        line = f"{config_dir}:0: (dir): config directory not found"
        raise ConfigError(line, (line,))
    settings, problems = _load_settings(config_dir / "syncd.yaml", environ)
    tenants, sources, tenant_problems = _load_tenants(config_dir / "tenants", environ)
    skipped = tenant_problems if skip_invalid_tenants else []
    if not skip_invalid_tenants:
        problems += tenant_problems
    if settings is None or problems:
        lines = tuple(str(p) for p in sorted(problems, key=_order))
        log.warning("config_invalid", config_dir=str(config_dir), problems=len(lines))
        raise ConfigError(f"{len(lines)} problem(s) in the configuration {config_dir}", lines)
    for skip in skipped:
        log.warning("config_tenant_skipped", problem=str(skip))
    config = Config(
        settings,
        MappingProxyType(tenants),
        MappingProxyType(sources),
        tuple(str(p) for p in sorted(skipped, key=_order)),
    )
    bindings = sum(len(t.bindings) for t in tenants.values())
    log.info("config_loaded", config_dir=str(config_dir), tenants=len(tenants), bindings=bindings)
    return config


def _order(found: Problem) -> tuple[str, int]:
    return found.file, found.line


def _load_settings(path: Path, environ: Mapping[str, str]) -> tuple[Settings | None, list[Problem]]:
    doc = _read(path, environ) if path.exists() else Document(data={})
    if isinstance(doc, Problem):
        return None, [doc]
    data = doc.data if doc.data is not None else {}
    override = environ.get(REDIS_URL_ENV)
    if override is not None and isinstance(data, dict):
        data = {**data, "redis_url": override}

    def where(loc: Loc) -> tuple[str, int]:
        if override is not None and loc[:1] == ("redis_url",):
            return f"${REDIS_URL_ENV}", 1
        return str(path), doc.line_of(loc)

    return validate(Settings, data, doc, where)


def _tenant_files(tenants_dir: Path) -> list[Path]:
    if not tenants_dir.is_dir():
        return []
    files = [*tenants_dir.glob("*.yaml"), *tenants_dir.glob("*.yml")]
    return sorted(p for p in files if not p.name.startswith(".") and p.is_file())


def _load_tenants(
    tenants_dir: Path, environ: Mapping[str, str]
) -> tuple[dict[str, Tenant], dict[str, Path], list[Problem]]:
    """Valid tenants by id, their files, and the problems of the files that are not valid."""
    tenants: dict[str, Tenant] = {}
    sources: dict[str, Path] = {}
    first_file: dict[str, Path] = {}  # every id seen, valid or not, for duplicate checks
    problems: list[Problem] = []
    for path in _tenant_files(tenants_dir):
        doc = _read(path, environ)
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        tenant, found = _tenant(path, doc, first_file)
        raw_id = doc.data.get("id") if isinstance(doc.data, dict) else None
        if isinstance(raw_id, str):
            first_file.setdefault(raw_id, path)
        problems += found
        if tenant is not None:
            tenants[tenant.id], sources[tenant.id] = tenant, path
    return tenants, sources, problems


def _tenant(
    path: Path, doc: Document, first_file: Mapping[str, Path]
) -> tuple[Tenant | None, list[Problem]]:
    """One tenant file validated: field rules, cross-entry rules, its id and file name."""

    def where(loc: Loc) -> tuple[str, int]:
        return str(path), doc.line_of(loc)

    if doc.data is None:
        return None, [problem(where, (), "the file is empty; a tenant needs id and dingtalk")]
    tenant, problems = validate(Tenant, doc.data, doc, where)
    extra = [*consistency_problems(doc.data), *_identity_problems(doc.data, path, first_file)]
    problems += [problem(where, loc, message, doc.secrets) for loc, message in extra]
    return (tenant if not problems else None), problems


def _identity_problems(
    data: Any, path: Path, first_file: Mapping[str, Path]
) -> list[tuple[Loc, str]]:
    """The tenant id must be the file's name, and unique across files."""
    tenant_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(tenant_id, str):
        return []
    found: list[tuple[Loc, str]] = []
    if tenant_id != path.stem:
        found.append((("id",), f"tenant id {tenant_id!r} must match the file name {path.name!r}"))
    if tenant_id in first_file:
        found.append(
            (("id",), f"tenant {tenant_id!r} is already defined in {first_file[tenant_id]}")
        )
    return found


def _read(path: Path, environ: Mapping[str, str]) -> Document | Problem:
    """The parsed file, or the one problem that stops it being read."""
    try:
        return parse(path.read_text(encoding="utf-8"), environ)
    except YamlSyntaxError as exc:
        return Problem(str(path), exc.line, (), str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(str(path), 1, (), f"cannot read the file ({type(exc).__name__})")
