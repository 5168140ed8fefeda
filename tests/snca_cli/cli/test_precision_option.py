"""`--precision` through the CLI: what ran is said in the first line and recorded in the outputs,
an index keeps its precision, and a query or an addition in another precision is refused.

The model is a band-mean model with an "int8 copy" beside it (a band-mean model with a smaller
logit scale); the CPU's int8 instructions are set by the test, as a CPU with and without VNNI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
from PIL import Image
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.errors import SncaError
from snca_cli.runtime.precision import int8_copy
from snca_cli.tasks.classify import MODEL_METADATA
from tests.helpers.classify_data import COLOURS, NAMES
from tests.helpers.index_data import resign_index
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted, write_raster

RECHECKED = "re-checked in fp32"


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    """A model with its int8 copy, and a 4 x 3 tile raster painted red, green and blue."""
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    make_band_mean_model(int8_copy(model), tile_size=16, class_names=NAMES, logit_scale=1.0)
    return model, write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))


def cpu_with(monkeypatch: pytest.MonkeyPatch, instructions: str | None) -> None:
    monkeypatch.setattr("snca_cli.runtime.onnx_model.int8_instructions", lambda: instructions)


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("instructions", "said", "recorded"),
    [
        ("AVX-512 VNNI", "int8 (auto: this CPU has AVX-512 VNNI; tiles whose two best", "int8"),
        (None, "fp32 (auto: this CPU has no VNNI/AMX int8 instructions)", "fp32"),
    ],
)
def test_classify_says_and_records_the_precision_the_cpu_chose(
    scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instructions, said, recorded
) -> None:
    model, raster = scene
    cpu_with(monkeypatch, instructions)
    out = tmp_path / "tiles.gpkg"
    result = invoke("classify", raster, "-m", model, "-o", out)
    assert result.exit_code == 0, result.output
    first = " ".join(result.stdout.split("\n\n")[0].split())
    assert first.startswith("model m.onnx: 3 classes, 16 px tiles, 3 bands; provider CPU, ")
    assert said in first
    assert (RECHECKED in result.stderr) == (recorded == "int8")
    record = json.loads(pyogrio.read_info(out, layer=0)["layer_metadata"][MODEL_METADATA])
    assert record["name"] == "m.onnx" and record["precision"] == recorded
    assert record["file"] == ("m.int8.onnx" if recorded == "int8" else "m.onnx")


def test_an_index_keeps_its_precision_for_queries_and_additions(
    scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, raster = scene
    cpu_with(monkeypatch, None)  # a CPU where auto would choose fp32
    index = tmp_path / "idx"
    built = invoke("index", "build", raster, "-m", model, "-o", index, "--precision", "int8")
    assert built.exit_code == 0, built.output
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["model"]["precision"] == "int8"
    query = tmp_path / "query.png"
    Image.new("RGB", (16, 16), (250, 10, 10)).save(query)
    mixed = invoke("search", index, "--image", query, "-m", model, "--precision", "fp32")
    assert mixed.exit_code == 2
    assert mixed.stderr.strip() == (
        f"error: index {index} holds int8 embeddings but model m.onnx runs in fp32; use "
        "--precision int8 (or auto, which follows the index)"
    )
    found = invoke("search", index, "--image", query, "-m", model, "-k", "1")
    assert found.exit_code == 0, found.output
    assert "red" in found.stdout
    other = write_raster(tmp_path / "other.tif", painted(COLOURS, 16))
    refused = invoke("index", "add", index, other, "-m", model, "--precision", "fp32")
    assert refused.exit_code == 2 and "holds int8 embeddings" in refused.stderr
    added = invoke("index", "add", index, other, "-m", model)
    assert added.exit_code == 0, added.output
    assert "int8 (auto" not in added.stdout and "int8 (an int8" not in added.stdout
    assert json.loads((index / "manifest.json").read_text())["model"]["precision"] == "int8"


def test_an_index_that_records_no_precision_holds_fp32_embeddings(
    scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, raster = scene
    cpu_with(monkeypatch, "AVX-512 VNNI")
    index = tmp_path / "idx"
    built = invoke("index", "build", raster, "-m", model, "-o", index, "--precision", "fp32")
    assert built.exit_code == 0, built.output
    resign_index(index, lambda payload: payload["model"].pop("precision"))  # an older index
    query = tmp_path / "query.png"
    Image.new("RGB", (16, 16), (10, 10, 250)).save(query)
    found = invoke("search", index, "--image", query, "-m", model, "-k", "1")
    assert found.exit_code == 0, found.output
    refused = invoke("search", index, "--image", query, "-m", model, "--precision", "int8")
    assert refused.exit_code == 2 and "holds fp32 embeddings" in refused.stderr


def test_adding_with_an_auto_model_follows_the_index_as_the_plugin_adds(
    scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The QGIS plugin adds to an index with the model of its dock (precision auto): on a CPU
    with VNNI, tiles added to an fp32 index are still embedded in fp32."""
    from snca_cli.runtime.onnx_model import OnnxModel
    from snca_cli.tasks.index.build import add_to_index

    model, raster = scene
    index = tmp_path / "idx"
    built = invoke("index", "build", raster, "-m", model, "-o", index, "--precision", "fp32")
    assert built.exit_code == 0, built.output
    cpu_with(monkeypatch, "AVX-512 VNNI")
    dock_model = OnnxModel(model)
    assert dock_model.precision == "int8"
    other = write_raster(tmp_path / "other.tif", painted(COLOURS, 16))
    summary = add_to_index(index, [other], dock_model)
    assert summary.count == 24
    assert json.loads((index / "manifest.json").read_text())["model"]["precision"] == "fp32"
    with pytest.raises(SncaError, match="holds fp32 embeddings but model m.onnx runs in int8"):
        add_to_index(index, [other], OnnxModel(model, precision="int8"))


@pytest.mark.slow  # starts a Dask cluster of worker processes
def test_the_recheck_line_counts_the_tiles_of_a_clusters_workers(scene, tmp_path: Path) -> None:
    """The workers' copies of the model re-check tiles; their counts travel with the units."""
    model, raster = scene
    lines = []
    for name, extra in (("here", []), ("workers", ["--workers", "2", "--unit-tiles", "3"])):
        index = tmp_path / name
        done = invoke("index", "build", raster, "-m", model, "-o", index, "--precision", "int8",
                      *extra)  # fmt: skip
        assert done.exit_code == 0, done.output
        lines.append([line for line in done.stderr.splitlines() if RECHECKED in line])
    assert lines[0] == lines[1] == ["int8: 4 of 12 tiles (33.3%) re-checked in fp32"]
