"""`snca chips`: the class-count table and summary line, one-line errors that write nothing, and
the chips folder read by `snca evaluate` with the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.index_data import TILE
from tests.helpers.labels import tile_points_file
from tests.helpers.rasters import painted_raster

runner = CliRunner()
RED, GREEN = (200, 30, 30), (30, 200, 40)
PAINT = np.array([[RED, RED, GREEN], [GREEN, RED, GREEN]], dtype=np.uint8)
LABELS = {"red": [(0, 0), (0, 1), (1, 1)], "green": [(0, 2), (1, 0), (1, 2)]}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    raster = painted_raster(tmp_path / "field.tif", PAINT, TILE)
    return raster, tile_points_file(tmp_path / "labels.geojson", LABELS)


def _chips(model: OnnxModel, raster: Path, labels: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["chips", str(raster), "--labels", str(labels), "--field", "cover",
         "-m", str(model.path), "-o", str(out), *extra],
    )  # fmt: skip


def test_chips_prints_the_counts_and_evaluate_reads_the_folder(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    out = tmp_path / "chips"
    result = _chips(model, *inputs, out)
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert {"│ green │ 3 │", "│ red │ 3 │", "│ total │ 6 │"} <= set(lines)
    text = "".join(result.output.split())  # rich wraps long paths
    assert "".join(f"wrote 6 chips of 2 classes to {out} (chips.json beside them)".split()) in text
    evaluated = runner.invoke(
        app, ["evaluate", str(model.path), str(out), "-o", str(tmp_path / "ev")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # red and green chips: the band-mean embedding (their colour) tells them apart
    assert metrics["class_names"] == ["green", "red"] and metrics["metrics"]["knn@1"] == 1.0
    assert metrics["num_queries"] == metrics["num_database"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--field", "kind"], "has no field 'kind' (fields: cover)"),
        (["--labels", "missing.geojson"], "missing.geojson does not exist"),
        (["--resolution", "abc"], "resolution must be auto, native or positive metres"),
    ],
)
def test_errors_are_one_line_and_write_nothing(
    tmp_path: Path,
    model: OnnxModel,
    inputs: tuple[Path, Path],
    change: list[str],
    message: str,
) -> None:
    out = tmp_path / "chips"
    result = _chips(model, *inputs, out, *change)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()


def test_an_existing_folder_needs_force(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    out = tmp_path / "chips"
    assert _chips(model, *inputs, out).exit_code == 0
    again = _chips(model, *inputs, out)
    assert again.exit_code == 2 and "exists" in again.output and "--force" in again.output
    assert _chips(model, *inputs, out, "--force").exit_code == 0


def test_what_is_reported_is_on_disk_inside_the_output(tmp_path: Path, model: OnnxModel) -> None:
    """Two rasters named alike in two folders and a class value that is a relative path: every
    chip reported is a file inside -o, and nothing is written beside it."""
    for folder in ("a", "b", "o"):
        (tmp_path / folder).mkdir()
    first = painted_raster(tmp_path / "a" / "field.tif", PAINT, TILE)
    second = painted_raster(tmp_path / "b" / "field.tif", PAINT, TILE)
    labels = {"../../X": LABELS["red"], "[/]green": LABELS["green"]}
    points = tile_points_file(tmp_path / "labels.geojson", labels)
    out = tmp_path / "o" / "chips"
    result = runner.invoke(
        app,
        ["chips", str(first), str(second), "--labels", str(points), "--field", "cover",
         "-m", str(model.path), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "wrote 12 chips of 2 classes" in text and "│ [/]green │ 6 │" in text
    assert len([p for p in out.rglob("*") if p.suffix == ".tif"]) == 12
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["chips"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "b", "band_mean.onnx", "labels.geojson", "o"
    ]  # fmt: skip
