"""The product never reaches into the lab: no module of ``syncd`` names ``syncd_lab``.

Imports are read with ``ast`` (``import``, ``from … import``) and so are string constants
(an ``importlib.import_module("syncd_lab…")`` would be one). The lab's commands reach the
CLI only through the ``syncd.commands`` entry point; ``tests/integration/
test_lab_package.py`` runs syncd with the lab uninstalled.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "syncd"
LAB = "syncd_lab"


def _lab_references(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == LAB]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == LAB:
            found.append(str(node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [node.value] if node.value.startswith(LAB) else []
    return found


@pytest.mark.parametrize(
    "path", sorted(PRODUCT.rglob("*.py")), ids=lambda p: str(p.relative_to(PRODUCT))
)
def test_product_module_never_names_the_lab(path: Path) -> None:
    """No import of, and no string naming, ``syncd_lab`` in the product package."""
    assert _lab_references(ast.parse(path.read_text())) == [], path


def test_the_check_sees_every_form_of_reaching_the_lab() -> None:
    """The scan is not vacuous: each way of naming the lab is found."""
    source = (
        "import syncd_lab\nfrom syncd_lab.sandbox import app\n"
        "import importlib\nimportlib.import_module('syncd_lab.demo')\n"
    )
    assert _lab_references(ast.parse(source)) == [
        "syncd_lab",
        "syncd_lab.sandbox",
        "syncd_lab.demo",
    ]


def test_the_moved_packages_are_gone_from_the_product() -> None:
    """The sandbox, the demo and their commands live in lab/ only."""
    gone = ["sandbox", "demo", "cli/demo.py", "cli/sandbox.py"]
    assert [name for name in gone if (PRODUCT / name).exists()] == []
    assert (ROOT / "lab" / LAB / "sandbox" / "app.py").is_file()
