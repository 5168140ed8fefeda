"""The floor plan holds: layers only point downward (docs/architecture.md).

contract -> runtime -> tasks -> (training, export) -> faces (CLI, plugin). The core (everything in
``snca_cli`` but ``snca_cli.cli`` and the console script ``snca_cli.entry``) never imports typer,
rich, torch, the CLI, the plugin or the training/export packages — neither at import time
(checked by importing every core module with those names blocked) nor lazily inside a function
(checked in the source).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import snca_cli

PACKAGE_DIR = Path(snca_cli.__file__).parent
#: Import names the core must never use.
FORBIDDEN = (
    "typer",
    "rich",
    "torch",
    "torchvision",
    "qgis",
    "snca_qgis",
    "snca_train",
    "snca_export",
    "train",
    "export",
    "snca_cli.cli",
)
#: Which layers each core layer may import (besides itself and the foundation modules).
ALLOWED = {
    "contract": {"contract"},
    "runtime": {"contract", "runtime"},
    "tasks": {"contract", "runtime", "tasks"},
}
FOUNDATION = {"snca_cli", "snca_cli.errors", "snca_cli.hooks"}
#: Faces outside ``snca_cli.cli``: the console script's entry, which loads the command line.
FACES = {"snca_cli.entry"}


def core_modules() -> list[str]:
    """Every module of the core, by dotted name."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if parts[1:2] == ("cli",) or name in FACES:
            continue
        names.append(name)
    return names


def imported_names(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``path`` names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _source(module: str) -> Path:
    path = PACKAGE_DIR.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_the_core_has_modules_in_every_layer() -> None:
    layers = {name.split(".")[1] for name in core_modules() if name.count(".") >= 1}
    assert {"contract", "runtime", "tasks", "errors", "hooks"} <= layers


@pytest.mark.parametrize("module", core_modules())
def test_no_core_module_names_a_face_torch_or_training(module: str) -> None:
    bad = sorted(name for name in imported_names(_source(module)) if _is_forbidden(name))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in core_modules() if m.count(".") >= 2])
def test_layers_only_point_downward(module: str) -> None:
    layer = module.split(".")[1]
    allowed = ALLOWED[layer]
    upward = sorted(
        name
        for name in imported_names(_source(module))
        if name.startswith("snca_cli.")
        and name not in FOUNDATION
        and not any(name.startswith(f"snca_cli.{other}") for other in allowed)
        and not name.startswith(("snca_cli.errors.", "snca_cli.hooks.", "snca_cli.__version__"))
    )
    assert not upward, f"{module} ({layer}) imports {upward}"


BLOCKER = """
import importlib.abc, importlib, json, sys
FORBIDDEN = {forbidden!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            raise ImportError(f"blocked by the layer test: {{name}}")
        return None

for name in list(sys.modules):
    if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
        del sys.modules[name]
sys.meta_path.insert(0, Blocker())
for module in {modules!r}:
    importlib.import_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def test_every_core_module_imports_with_faces_torch_and_training_blocked() -> None:
    script = BLOCKER.format(forbidden=FORBIDDEN, modules=core_modules())
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout)
    assert set(core_modules()) <= set(loaded)
    assert not [name for name in loaded if _is_forbidden(name)]


def test_the_blocker_would_catch_a_face_import() -> None:
    """The blocked import really fails (the test above could not pass by accident)."""
    script = BLOCKER.format(forbidden=FORBIDDEN, modules=["snca_cli.cli.support"])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "blocked by the layer test" in done.stderr
