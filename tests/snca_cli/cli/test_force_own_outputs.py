"""Issue 28 item 5: ``--force`` replaces only what the command itself would have written: a
folder of the user (chips, evaluate, index build), a folder snca wrote that now holds a user's
file, and a sibling file the user did not name (the GeoJSON beside ``-o X.gpkg``, the class
map's ``.qml``) are refused in one line and left as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.chips_cli import PAINT, field_and_labels, run_chips
from tests.helpers.evaluate_data import TEST, TRAIN, colour_model, write_split_file
from tests.helpers.index_data import TILE
from tests.helpers.rasters import painted_raster

runner = CliRunner()


def _user_folder(folder: Path, *names: str) -> dict[str, str]:
    """A folder of the user's files; returns their contents, to compare after the run."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"the user's {name}")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(errors="replace")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(result, path: Path, reason: str) -> None:
    assert result.exit_code == 2, result.output
    line = " ".join(result.stderr.split())
    assert line.startswith(f"error: refusing to replace {path}: "), line
    assert reason in line and line.endswith("nothing was deleted"), line
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return field_and_labels(tmp_path)


def test_chips_force_never_deletes_a_users_folder(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    mine = tmp_path / "mine"
    before = _user_folder(mine, "thesis.docx", "notes.txt")
    _refused(run_chips(model, *inputs, mine, "--force"), mine, "not a chips folder written by snca")
    assert _contents(mine) == before
    # a folder whose chips.json is not snca's record is not one either
    (mine / "chips.json").write_text('{"chips": []}')
    _refused(run_chips(model, *inputs, mine, "--force"), mine, "not a record of snca chips")


def test_chips_force_replaces_its_own_folder_but_not_a_file_added_to_it(
    tmp_path: Path, model: OnnxModel, inputs: tuple[Path, Path]
) -> None:
    out = tmp_path / "chips"
    assert run_chips(model, *inputs, out).exit_code == 0
    assert run_chips(model, *inputs, out, "--force").exit_code == 0
    (out / "red" / "my_extra_chip.tif").write_text("mine")
    before = _contents(out)
    result = run_chips(model, *inputs, out, "--force")
    _refused(result, out, "it holds red/my_extra_chip.tif, which snca did not write there")
    assert _contents(out) == before


def test_evaluate_force_never_deletes_a_users_folder(tmp_path: Path, scenes: Path) -> None:
    model = colour_model(tmp_path / "m.onnx")
    split = write_split_file(tmp_path / "mine.json", TRAIN, TEST)
    args = ["evaluate", str(model), str(scenes), "--split", str(split), "--force", "-o"]
    mine = tmp_path / "mine"
    _user_folder(mine, "photo.jpg")
    (mine / "metrics.json").write_text('{"accuracy": 0.9}')  # the user's own metrics
    before = _contents(mine)
    _refused(runner.invoke(app, [*args, str(mine)]), mine, "not a report of snca evaluate")
    assert _contents(mine) == before
    report = tmp_path / "report"
    assert runner.invoke(app, [*args, str(report)]).exit_code == 0
    assert runner.invoke(app, [*args, str(report)]).exit_code == 0  # its own: replaced
    (report / "notes.txt").write_text("mine")
    result = runner.invoke(app, [*args, str(report)])
    _refused(result, report, "it holds notes.txt, which snca did not write there")
    assert (report / "notes.txt").read_text() == "mine"


def test_index_build_force_needs_a_real_index(
    tmp_path: Path, model: OnnxModel, index_dir: Path
) -> None:
    raster = painted_raster(tmp_path / "more.tif", PAINT, TILE)
    build = ["index", "build", str(raster), "-m", str(model.path), "--force", "-o"]
    mine = tmp_path / "mine"
    _user_folder(mine, "data.csv")
    (mine / "manifest.json").write_text('{"project": "mine"}')  # a manifest of something else
    before = _contents(mine)
    _refused(runner.invoke(app, [*build, str(mine)]), mine, "not an snca index manifest")
    assert _contents(mine) == before
    (index_dir / "notes.txt").write_text("mine")
    result = runner.invoke(app, [*build, str(index_dir)])
    _refused(result, index_dir, "it holds notes.txt, which snca did not write there")
    assert (index_dir / "notes.txt").read_text() == "mine"
    (index_dir / "notes.txt").unlink()
    assert runner.invoke(app, [*build, str(index_dir)]).exit_code == 0  # a real index


@pytest.fixture
def classify_args(tmp_path: Path, model: OnnxModel) -> list[str]:
    raster = painted_raster(tmp_path / "r.tif", PAINT, TILE)
    return ["classify", str(raster), "-m", str(model.path), "--force"]


def test_classify_force_never_replaces_an_unnamed_geojson_it_did_not_write(
    tmp_path: Path, classify_args: list[str]
) -> None:
    out = tmp_path / "o"
    (out / "X.geojson").parent.mkdir()
    (out / "X.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    before = _contents(out)
    result = runner.invoke(app, [*classify_args, "-o", str(out / "X.gpkg")])
    _refused(result, out / "X.geojson", "not a GeoJSON copy written by snca")
    assert _contents(out) == before and not (out / "X.gpkg").exists()
    named = ["-o", str(out / "X.gpkg"), "--geojson", str(out / "X.geojson")]
    assert runner.invoke(app, [*classify_args, *named]).exit_code == 0  # named: replaced
    assert json.loads((out / "X.geojson").read_text())["features"]
    again = runner.invoke(app, [*classify_args, "-o", str(out / "X.gpkg")])
    assert again.exit_code == 0, again.output  # written by snca: replaced


def test_classify_force_never_replaces_a_style_it_did_not_write(
    tmp_path: Path, classify_args: list[str]
) -> None:
    out = tmp_path / "o"
    before = _user_folder(out, "C.qml")  # e.g. the user's style of their C.gpkg
    args = [*classify_args, "-o", str(out / "X.gpkg"), "--class-map", str(out / "C.tif")]
    _refused(runner.invoke(app, args), out / "C.qml", "not a QGIS style written by snca")
    assert _contents(out) == before
    (out / "C.qml").unlink()
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0  # its own style: replaced


def test_search_force_never_replaces_an_unnamed_geojson_it_did_not_write(
    tmp_path: Path, index_dir: Path
) -> None:
    out = tmp_path / "o"
    before = _user_folder(out, "X.geojson")
    args = ["search", str(index_dir), "--tile-id", "1", "-o", str(out / "X.gpkg"), "--force"]
    _refused(runner.invoke(app, args), out / "X.geojson", "not a GeoJSON copy written by snca")
    assert _contents(out) == before and not (out / "X.gpkg").exists()
    (out / "X.geojson").unlink()
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0  # its own GeoJSON: replaced
