"""Issue cases 1 and 2 through the CLI: an output that is a folder is never deleted (even with
--force), and two outputs on one path are refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.classify_data import COLOURS, NAMES
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted, write_raster

runner = CliRunner()


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, Path]:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    raster = write_raster(tmp_path / "r.tif", painted(COLOURS, 16))
    return model, raster


@pytest.mark.parametrize("option", ["--class-map", "--geojson"])
def test_force_never_deletes_a_folder_named_as_an_output(
    tmp_path: Path, job: tuple[Path, Path], option: str
) -> None:
    model, raster = job
    folder = tmp_path / "o" / "maps"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("x")
    args = ["classify", str(raster), "-m", str(model), "-o", str(tmp_path / "o" / "t.gpkg")]
    result = runner.invoke(app, [*args, option, str(folder), "--force"])
    assert result.exit_code == 2
    assert f"output {folder} is an existing folder" in result.stderr
    assert (folder / "a.txt").read_text() == "x"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["maps"]


@pytest.mark.parametrize(
    ("extra", "clash"),
    [
        (["--class-map", "o/a.gpkg"], "o/a.gpkg"),
        (["--class-map", "o/a.geojson"], "o/a.geojson"),
        (["--geojson", "o/a.gpkg"], "o/a.gpkg"),
        (["--geojson", "o/./a.gpkg"], "o/a.gpkg"),
    ],
)
def test_two_outputs_on_one_path_are_refused_before_any_work(
    tmp_path: Path, job: tuple[Path, Path], extra: list[str], clash: str, monkeypatch
) -> None:
    model, raster = job
    monkeypatch.chdir(tmp_path)
    args = ["classify", str(raster), "-m", str(model), "-o", "o/a.gpkg", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "two outputs are the same file" in result.stderr and clash in result.stderr
    assert not (tmp_path / "o").exists(), "nothing was written, not even a folder"


def test_search_output_beside_a_folder_is_refused(tmp_path: Path, index_dir: Path) -> None:
    (tmp_path / "X.geojson").mkdir()
    (tmp_path / "X.geojson" / "keep.txt").write_text("x")
    args = ["search", str(index_dir), "--tile-id", "1", "-o", str(tmp_path / "X.gpkg"), "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "is an existing folder" in result.stderr
    assert (tmp_path / "X.geojson" / "keep.txt").read_text() == "x"
    assert not (tmp_path / "X.gpkg").exists()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links not followed) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_issue_28_case_6_one_file_through_a_linked_folder_is_one_output(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch
) -> None:
    model, raster = job
    monkeypatch.chdir(tmp_path)
    Path("o").mkdir()
    Path("olink").symlink_to("o")
    args = ["classify", str(raster), "-m", str(model), "-o", "o/c.gpkg"]
    result = runner.invoke(app, [*args, "--class-map", "olink/c.gpkg"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: two outputs are the same file olink/c.gpkg (o/c.gpkg); name them apart"
    )
    assert not any(Path("o").iterdir()) and Path("olink").is_symlink()


def _plant_output_folder(tmp_path: Path, kind: str, index_dir: Path) -> Path:
    """A folder snca writes as one output, made by hand (its marker files) or built."""
    if kind == "index":
        return index_dir
    if kind == "index through a link":
        (tmp_path / "idxlink").symlink_to(index_dir)
        return tmp_path / "idxlink"
    folder = tmp_path / kind.replace(" ", "-")
    folder.mkdir()
    markers = {
        "evaluation report": ["metrics.json", "confusion.png"],
        "chips folder": ["chips.json"],
    }
    if kind == "staging folder":
        folder = folder.rename(tmp_path / ".snca-staging-aaaaaaaaaaaa")
    for name in markers.get(kind, ["journal.json"]):
        (folder / name).write_text("{}")
    return folder


@pytest.mark.parametrize(
    "kind",
    ["index", "index through a link", "evaluation report", "chips folder", "staging folder"],
)
def test_issue_28_case_4_an_output_never_lands_inside_an_output_folder(
    tmp_path: Path, job: tuple[Path, Path], index_dir: Path, kind: str
) -> None:
    model, raster = job
    folder = _plant_output_folder(tmp_path, kind, index_dir)
    real = folder.resolve()
    before = _snapshot(real)
    runs = [
        ["search", str(index_dir), "--tile-id", "3", "-o", str(folder / "tiles.gpkg"), "--force"],
        ["classify", str(raster), "-m", str(model), "-o", str(folder / "sub" / "c.gpkg")],
        ["index", "build", str(raster), "-m", str(model), "-o", str(folder / "idx")],
    ]
    for args in runs:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: output "), (args, lines)
        assert f"would land inside {folder}, a" in lines[0], lines
    assert _snapshot(real) == before, "nothing inside the folder changed"
    searched = runner.invoke(app, ["search", str(index_dir), "--tile-id", "3"])
    assert searched.exit_code == 0, searched.output


def test_an_output_inside_another_output_of_the_set_is_refused(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch
) -> None:
    model, raster = job
    monkeypatch.chdir(tmp_path)
    args = ["classify", str(raster), "-m", str(model), "-o", "o/c.gpkg"]
    result = runner.invoke(app, [*args, "--class-map", "o/c.gpkg/x.tif"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: output o/c.gpkg/x.tif lies inside output o/c.gpkg; name them apart"
    )
    assert not Path("o").exists()
