"""The layering of DESIGN.md holds: a module imports only from its own layer or below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "syncd"

# Layer of each top-level part of the package (DESIGN.md "Layers and modules").
LAYERS = {
    "errors": 0,
    "model": 0,
    "observability": 0,
    "crypto": 1,
    "translate": 1,
    "sync": 1,
    "store": 2,
    "adapters": 2,
    "queue": 2,
    "reconcile": 2,
    "config": 3,
    "webhook": 3,
    "worker": 3,
    "cli": 3,
}
# Pure core: no awaits, no I/O libraries.
PURE = {"crypto", "translate", "sync"}
IO_LIBS = {"aiohttp", "redis", "arq", "caldav", "niquests", "requests", "socket", "asyncio"}


def _part(module_path: Path) -> str:
    rel = module_path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = sorted(p for p in ROOT.rglob("*.py") if _part(p) in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_layers(path: Path) -> None:
    """No module imports a syncd part from a higher layer (sync/ports may name L0 only)."""
    own = LAYERS[_part(path)]
    tree = ast.parse(path.read_text())
    for name in _imports(tree):
        parts = name.split(".")
        if parts[0] != "syncd" or len(parts) < 2 or parts[1] not in LAYERS:
            continue
        assert LAYERS[parts[1]] <= own, f"{path.name} (L{own}) imports {name}"


@pytest.mark.parametrize(
    "path", [p for p in MODULES if _part(p) in PURE], ids=lambda p: str(p.relative_to(ROOT))
)
def test_pure_core_does_no_io(path: Path) -> None:
    """The pure core neither awaits nor imports I/O libraries."""
    tree = ast.parse(path.read_text())
    assert not any(isinstance(n, ast.Await | ast.AsyncFunctionDef) for n in ast.walk(tree)) or (
        path.name == "ports.py"
    ), f"{path} awaits"
    bad = {n.split(".")[0] for n in _imports(tree)} & IO_LIBS
    assert not bad, f"{path} imports {bad}"
