"""The lowest numpy and onnxruntime that pyproject.toml allows really run snca's shipped models.

The wheel is installed into a fresh venv with exactly ``onnxruntime==MIN`` and ``numpy==MIN``
(the ``>=`` bounds of ``[project] dependencies``; pip resolves everything else against them, so
the bounds must also agree with the other dependencies). There every shipped model (fp32 and
int8) must give this environment's embeddings and probabilities within a tolerance, and
``snca classify`` a GeoTIFF (cut from the demo scene) with each model the same classes. A bound
set too low fails here (both tried): with numpy 1.24.0, pip cannot install onnxruntime 1.17.3 or
1.18.0 (they need numpy 1.24.2); with numpy 1.24.2, onnxruntime 1.17.3 installs but refuses the
int8 model ("Opset 5 is under development ... ai.onnx.ml is till opset 4"). Why 1.18.1 and not
1.18.0 (which runs both models on numpy 1): pyproject.toml's comment.

The other end, the newest releases pip resolves, is the main test environment: it installs
the dependencies without upper bounds, so every other test runs on them.

Needs the package index (pip downloads the wheels); about a minute.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from packaging.requirements import Requirement
from packaging.version import Version
from rasterio.windows import Window
from typer.testing import CliRunner

import snca_cli
from snca_cli.cli import app
from snca_cli.contract.scaling import percentile_scaling
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.demo import demo_scene_path
from tests.helpers.wheel import ROOT, build_wheel, create_venv, run_in

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with tomllib (Python 3.11+)")
pytestmark = pytest.mark.slow

#: The shipped models, as this checkout has them.
MODELS = sorted((Path(snca_cli.__file__).parent / "models").glob("*.onnx"))
#: Largest difference allowed between the two environments' outputs (both in [0, 1]).
TOLERANCE = 1e-4

#: Run in the venv: every model the installed package ships on the images of argv[1], the
#: outputs into argv[2]; prints the versions it ran with.
PROBE = """
import json, sys
from importlib.metadata import version
from pathlib import Path
import numpy as np
import snca_cli
from snca_cli.runtime.onnx_model import OnnxModel
images, outputs = np.load(sys.argv[1]), {}
for path in sorted((Path(snca_cli.__file__).parent / "models").glob("*.onnx")):
    result = OnnxModel(path).run(images)
    outputs[path.name + ":embedding"] = result.embedding
    outputs[path.name + ":probabilities"] = result.probabilities
np.savez(sys.argv[2], **outputs)
print(json.dumps({name: version(name) for name in ("numpy", "onnxruntime")}))
"""


def minimum(name: str) -> str:
    """The version of ``name``'s ``>=`` bound in pyproject.toml's ``[project] dependencies``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            (bound,) = [s.version for s in requirement.specifier if s.operator == ">="]
            return bound
    raise AssertionError(f"pyproject.toml does not depend on {name}")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel, onnxruntime==MIN and numpy==MIN; its interpreter."""
    work = tmp_path_factory.mktemp("bounds")
    wheel = build_wheel(work / "wheels")
    python = create_venv(work / "venv", sys.executable)
    pins = [f"onnxruntime=={minimum('onnxruntime')}", f"numpy=={minimum('numpy')}"]
    run_in([python, "-m", "pip", "install", "-q", wheel, *pins], timeout=900)
    return python


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 450 x 300 px cut of the demo scene (Sentinel-2 uint16): 3 x 2 tiles of 150 px."""
    path = tmp_path_factory.mktemp("scene") / "cut.tif"
    window = Window(300, 450, 450, 300)  # farmland, creeks, the lagoon shore
    with rasterio.open(demo_scene_path()) as src:
        data, transform = src.read(window=window), src.window_transform(window)
        profile = dict(src.profile, driver="GTiff", width=450, height=300, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def model_inputs(scene: Path) -> np.ndarray:
    """The scene's six tiles stretched as classify does, plus two of seeded noise."""
    with rasterio.open(scene) as src:
        raw = src.read()
    scaled = percentile_scaling(raw.reshape(3, -1), raw.dtype)(raw)
    tiles = scaled.reshape(3, 2, 150, 3, 150).transpose(1, 3, 0, 2, 4).reshape(6, 3, 150, 150)
    noise = np.random.default_rng(0).random((2, 3, 150, 150), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate([tiles, noise]), dtype=np.float32)


def test_the_minimum_versions_are_what_the_venv_runs_and_every_model_agrees(
    venv: Path, scene: Path, tmp_path: Path
) -> None:
    assert {p.name for p in MODELS} >= {"snca-aid150-lite0.onnx", "snca-aid150-lite0.int8.onnx"}
    images = model_inputs(scene)
    np.save(tmp_path / "images.npy", images)
    probe = run_in([venv, "-c", PROBE, tmp_path / "images.npy", tmp_path / "out.npz"], 300)
    versions = json.loads(probe.stdout.strip().splitlines()[-1])
    for name in ("numpy", "onnxruntime"):
        assert Version(versions[name]) == Version(minimum(name)), (name, versions[name])
    there = np.load(tmp_path / "out.npz")
    assert sorted(there.files) == sorted(
        f"{p.name}:{o}" for p in MODELS for o in ("embedding", "probabilities")
    )
    for path in MODELS:
        here = OnnxModel(path).run(images)
        for name, values in (("embedding", here.embedding), ("probabilities", here.probabilities)):
            np.testing.assert_allclose(
                there[f"{path.name}:{name}"],
                values,
                rtol=0,
                atol=TOLERANCE,
                err_msg=f"{path.name} {name}",
            )
        assert (there[f"{path.name}:probabilities"].argmax(1) == here.probabilities.argmax(1)).all()


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_snca_classify_at_the_minimum_versions_gives_the_same_tiles(
    venv: Path, scene: Path, tmp_path: Path, model: Path
) -> None:
    snca = venv.parent / "snca"
    run_in([snca, "classify", scene, "-m", model, "-o", tmp_path / "there.gpkg"], 300)
    result = CliRunner().invoke(
        app, ["classify", str(scene), "-m", str(model), "-o", str(tmp_path / "here.gpkg")]
    )
    assert result.exit_code == 0, result.output
    there = pyogrio.read_dataframe(tmp_path / "there.gpkg")
    here = pyogrio.read_dataframe(tmp_path / "here.gpkg")
    assert len(here) == 6
    assert list(there["class_name"]) == list(here["class_name"])
    np.testing.assert_allclose(there["score"], here["score"], rtol=0, atol=TOLERANCE)
