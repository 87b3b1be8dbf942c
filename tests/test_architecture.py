"""The layer order declared in ARCHITECTURE.md holds in the code.

Every import in biobank/ (at the top of a module or inside a function) is read with
``ast``; a package may import its own modules, the kernel, and packages of lower layers
only. A new package or top-level module must be declared in ARCHITECTURE.md first.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "biobank"


def declared_layers() -> list[set[str]]:
    """The ```layers block of ARCHITECTURE.md, lowest layer first."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    match = re.search(r"```layers\n(.*?)```", text, re.DOTALL)
    assert match, "ARCHITECTURE.md has no ```layers block"
    layers = []
    for line in match.group(1).strip().splitlines():
        names = line.split(":", 1)[-1].split()
        layers.append(set(names))
    return list(reversed(layers))  # written top (application) down to the kernel


def unit_of(module: str) -> str | None:
    """'biobank.storage.services' → 'storage'; 'biobank.web' → 'web'."""
    parts = module.split(".")
    if parts[0] != "biobank":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "biobank":  # from biobank import transaction
                found += [(node.lineno, f"biobank.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def source_units() -> dict[str, list[Path]]:
    units: dict[str, list[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        unit = relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else path.stem
        units.setdefault(unit, []).append(path)
    return units


def test_every_package_and_module_is_declared_in_a_layer():
    declared = set().union(*declared_layers())
    undeclared = sorted(set(source_units()) - declared)
    assert not undeclared, f"declare these in ARCHITECTURE.md's layers block: {undeclared}"


def test_nothing_is_declared_twice():
    layers = declared_layers()
    names = [name for layer in layers for name in layer]
    assert len(names) == len(set(names))


def wrong_imports(unit: str, path: Path, layers: list[set[str]]) -> list[str]:
    """The imports of ``path`` (in package ``unit``) that go up or sideways."""
    rank = {name: index for index, layer in enumerate(layers) for name in layer}
    kernel = layers[0]
    wrong = []
    for line, module in imports_of(path):
        target = unit_of(module)
        if target is None or target == unit or target in kernel:
            continue
        if target not in rank or rank[target] >= rank[unit]:
            wrong.append(f"{path}:{line} imports {module}")
    return wrong


def test_no_import_goes_up_or_sideways():
    layers = declared_layers()
    wrong = [
        problem
        for unit, paths in source_units().items()
        for path in paths
        for problem in wrong_imports(unit, path, layers)
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "source, allowed",
    [
        ("from biobank.storage import services\n", False),
        ("from biobank.samples.models import Aliquot\n", True),
        ("def f():\n    import biobank.distribution.services\n", False),
        ("from biobank import transaction\n", True),
        ("from biobank import create_app\n", False),
    ],
)
def test_the_checker_sees_imports_at_any_depth(tmp_path, source, allowed):
    # As if written in biobank/printing/: samples is below it, storage beside it.
    path = tmp_path / "module.py"
    path.write_text(source)
    assert (not wrong_imports("printing", path, declared_layers())) is allowed
