"""From map labels to a fine-tuned model, as a user runs it: ``snca chips`` on the real Landsat
scene with a small labelled layer, ``snca train --init shipped`` for a few epochs, ``snca
export`` and ``snca classify`` label the labelled tiles with their classes."""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.labels import LANDSAT_CLOUDS, LANDSAT_PLACES, landsat_points_file

pytest.importorskip("torch")
pytestmark = [pytest.mark.shared_data, pytest.mark.torch, pytest.mark.slow]

runner = CliRunner()


def snca(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_chips_then_fine_tuning_the_shipped_model_labels_the_labelled_tiles(
    tmp_path: Path, landsat_rgb: Path
) -> None:
    places = LANDSAT_PLACES | {"cloud": LANDSAT_CLOUDS}
    labels = landsat_points_file(tmp_path / "labels.geojson", landsat_rgb, places)
    chips = tmp_path / "chips"
    snca(
        "chips",
        landsat_rgb,
        "--labels",
        labels,
        "--field",
        "kind",
        "--resolution",
        "100",
        "-o",
        chips,
    )
    record = json.loads((chips / "chips.json").read_text())
    assert record["counts"] == {"cloud": 5, "deep water": 6, "land": 5, "shallow water": 3}

    run = tmp_path / "run"
    said = snca(
        "train",
        chips,
        "--init",
        "shipped",
        "--epochs",
        "10",
        "--batch-size",
        "8",
        "--workers",
        "2",
        "-o",
        run,
    )
    assert "a new class head for 4 classes, fitted as a linear probe" in said
    model = tmp_path / "landsat.onnx"
    snca("export", run / "last.pt", "-o", model)  # takes the chips' 100 m from chips.json
    metadata = OnnxModel(model).metadata
    assert metadata.resolution_m == 100.0 and metadata.training_resolution_m == (100.0, 100.0)
    classes = tmp_path / "classes.gpkg"
    snca("classify", landsat_rgb, "-m", model, "-o", classes)

    tiles = pyogrio.read_dataframe(classes)
    cells = zip(tiles["row"], tiles["col"], strict=True)
    predicted = dict(zip(cells, tiles["class_name"], strict=True))
    trained_on = set(json.loads((run / "split.json").read_text())["train"])
    wrong = {
        chip["file"]: predicted[chip["row"], chip["col"]]
        for chip in record["chips"]
        if predicted[chip["row"], chip["col"]] != chip["class"]
    }
    held_out = [chip for chip in record["chips"] if chip["file"] not in trained_on]
    assert len(record["chips"]) == 19 and len(held_out) == 8
    # every labelled tile it trained on, and all but at most one it never saw
    assert not set(wrong) & trained_on, wrong
    assert len(wrong) <= 1, wrong
    assert set(tiles["class_name"]) <= {"cloud", "deep water", "land", "shallow water", "unknown"}
