"""`snca chips`: the class-count table and summary line, one-line errors that write nothing, and
the chips folder read by `snca evaluate` with the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.chips_cli import LABELS, PAINT, field_and_labels, run_chips
from tests.helpers.index_data import TILE
from tests.helpers.labels import tile_boxes_file, tile_points_file
from tests.helpers.rasters import painted_raster

runner = CliRunner()


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return field_and_labels(tmp_path)


def test_chips_prints_the_counts_and_evaluate_reads_the_folder(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    out = tmp_path / "chips"
    result = run_chips(model, *inputs, out)
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
    result = run_chips(model, *inputs, out, *change)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()


def test_an_existing_folder_needs_force(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    out = tmp_path / "chips"
    assert run_chips(model, *inputs, out).exit_code == 0
    again = run_chips(model, *inputs, out)
    assert again.exit_code == 2 and "exists" in again.output and "--force" in again.output
    assert run_chips(model, *inputs, out, "--force").exit_code == 0


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


SMALL = "polygon(s) cover less than half of any tile (ignored; the largest covers"
HALF = "of a tile, and a polygon labels the tiles at least half inside it)"


@pytest.mark.parametrize(
    ("points", "boxes", "reasons"),
    [
        (
            {"red": LABELS["red"], "green": LABELS["red"]},
            {},
            "3 tile(s) labelled with two classes (dropped)",
        ),
        (
            {},
            {"red": [(0.25, 0.25, 0.75, 0.75)], "green": [(1.25, 0.25, 1.75, 0.875)]},
            f"2 {SMALL} 31.2 % {HALF}",
        ),
        (
            {},
            {
                "red": [(0, 0, 1, 1), (9, 9, 10, 10)],
                "green": [(0, 0, 1, 1), (2.5, 1.5, 2.75, 1.75)],
            },
            f"1 label(s) fall outside every raster (ignored); 1 {SMALL} 6.2 % {HALF}; "
            "1 tile(s) labelled with two classes (dropped)",
        ),
    ],
    ids=["all in conflict", "all polygons small", "each reason"],
)
def test_labels_that_leave_no_tile_say_why(
    tmp_path: Path,
    model: OnnxModel,
    points: dict[str, list[tuple[int, int]]],
    boxes: dict[str, list[tuple[float, float, float, float]]],
    reasons: str,
) -> None:
    """Issue 28, item 14: labels in conflict on every tile, or polygons all under half a tile,
    ended in "check that labels and rasters cover the same place"."""
    raster = painted_raster(tmp_path / "field.tif", PAINT, TILE)
    labels = tmp_path / "labels.geojson"
    if boxes:
        tile_boxes_file(labels, boxes)
    else:
        tile_points_file(labels, points)
    out = tmp_path / "chips"
    result = run_chips(model, raster, labels, out)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: no tile is left labelled by labels.geojson on the 1 raster(s): {reasons}"
    ]
    assert not out.exists()
