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
    assert not any((tmp_path / "o").iterdir()), "nothing was written"


def test_search_output_beside_a_folder_is_refused(tmp_path: Path, index_dir: Path) -> None:
    (tmp_path / "X.geojson").mkdir()
    (tmp_path / "X.geojson" / "keep.txt").write_text("x")
    args = ["search", str(index_dir), "--tile-id", "1", "-o", str(tmp_path / "X.gpkg"), "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "is an existing folder" in result.stderr
    assert (tmp_path / "X.geojson" / "keep.txt").read_text() == "x"
    assert not (tmp_path / "X.gpkg").exists()
