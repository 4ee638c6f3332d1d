"""What the import contracts (``[tool.importlinter]`` in pyproject.toml) cannot say.

``lint-imports`` (part of ``make lint``) checks who may import whom: the four layers, no
I/O library in the pure core, the webhook and the sandbox kept apart. It sees imports
only, so the other half of "pure" is checked here: the core never awaits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "syncd"
PURE = ("crypto.py", "translate", "sync")
# The ports name the coroutines the adapters implement; they await nothing themselves.
PORTS = ROOT / "sync" / "ports.py"

MODULES = sorted(
    p
    for part in PURE
    for p in ([ROOT / part] if part.endswith(".py") else (ROOT / part).rglob("*.py"))
)


def test_every_pure_part_is_found() -> None:
    """The list below is not empty by accident (a moved package would empty it)."""
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == set(PURE)


@pytest.mark.parametrize(
    "path", [p for p in MODULES if p != PORTS], ids=lambda p: str(p.relative_to(ROOT))
)
def test_pure_core_never_awaits(path: Path) -> None:
    """No ``await``, ``async def``, ``async for`` or ``async with`` in the pure core."""
    tree = ast.parse(path.read_text())
    kinds = ast.Await | ast.AsyncFunctionDef | ast.AsyncFor | ast.AsyncWith
    found = [n.lineno for n in ast.walk(tree) if isinstance(n, kinds)]
    assert not found, f"{path} awaits at lines {found}"
