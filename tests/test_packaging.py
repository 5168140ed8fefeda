"""What ``pip install snca`` puts into site-packages: unambiguous import names only.

The project is built into a wheel and installed into a fresh virtual environment; the installed
distribution's RECORD must add the packages ``snca_cli``, ``snca_train`` and ``snca_export`` and
no generic top-level package such as ``train`` or ``export`` (they would collide with other
software, also inside QGIS's Python).
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.wheel import build_wheel, create_venv, run_in

INSPECT = """
import json
from importlib.metadata import distribution
dist = distribution("snca")
roots = {str(f).split("/")[0] for f in dist.files}
top = sorted(r for r in roots if not r.endswith((".dist-info", ".data")) and r != "..")
points = [[e.group, e.name, e.value] for e in dist.entry_points]
print(json.dumps({"top": top, "files": [str(f) for f in dist.files], "entry_points": points}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The RECORD and entry points of snca installed from a wheel into a fresh venv."""
    work = tmp_path_factory.mktemp("packaging")
    wheel = build_wheel(work / "wheels")
    python = create_venv(work / "venv")
    run_in([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], timeout=600)
    report = run_in([python, "-c", INSPECT], timeout=120, cwd=work)
    return json.loads(report.stdout)


@pytest.mark.slow
def test_no_generic_top_level_package_is_installed(installed: dict) -> None:
    top = set(installed["top"])
    assert {"snca_cli", "snca_train", "snca_export"} <= top
    assert not top & {"train", "export", "tests", "benchmarks", "qgis_plugin"}, top


@pytest.mark.slow
def test_the_installed_packages_hold_their_modules_model_and_demo_scene(installed: dict) -> None:
    files = set(installed["files"])
    for path in (
        "snca_train/trainer.py",
        "snca_train/losses/snca.py",
        "snca_export/workflow.py",
        "snca_cli/tasks/index/search.py",
        "snca_cli/models/snca-aid150-lite0.onnx",
        "snca_cli/demo_data/sentinel2_rgb_10m.tif",
        "snca_cli/demo_data/NOTICE.md",
    ):
        assert path in files, path


@pytest.mark.slow
def test_the_checkpoint_opener_is_registered_by_entry_point(installed: dict) -> None:
    points = {(group, name): value for group, name, value in installed["entry_points"]}
    assert points[("snca.embedders", "checkpoint")] == "snca_train.embedder:open_checkpoint"
    assert points[("console_scripts", "snca")] == "snca_cli.entry:main"
