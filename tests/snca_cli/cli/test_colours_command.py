"""`snca colours`: the shipped model carries its class colours; a set colour travels with the
model copy into the styled outputs of classify; bad settings are one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.contract.class_colours import class_colours
from snca_cli.runtime.default_model import default_model_path
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster

runner = CliRunner()


def test_the_shipped_models_carry_the_colours_their_class_names_give() -> None:
    for path in (default_model_path(), default_model_path().with_suffix(".int8.onnx")):
        metadata = OnnxModel(path).metadata
        assert metadata.class_colours == class_colours(metadata.class_names), path.name
        assert len(set(metadata.class_colours.values())) == len(metadata.class_names)


def test_a_set_colour_is_written_into_the_copy_and_styles_classify(tmp_path: Path) -> None:
    model = make_band_mean_model(
        tmp_path / "bm.onnx", tile_size=8, class_names=["red", "green", "blue"]
    )
    copy = tmp_path / "recoloured.onnx"
    result = runner.invoke(app, ["colours", str(model), "--set", "green=#123456", "-o", str(copy)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "#123456" in result.output
    colours = OnnxModel(copy).metadata.class_colours
    assert colours["green"] == "#123456"
    assert colours["red"] == class_colours(["red", "green", "blue"])["red"]

    green, red = [20, 200, 20], [200, 20, 20]
    raster = painted_raster(tmp_path / "colours.tif", [[green, red]], tile_size=8)
    out = tmp_path / "tiles.gpkg"
    done = runner.invoke(app, ["classify", str(raster), "-m", str(copy), "-o", str(out)])
    assert done.exit_code == 0, done.output
    with sqlite3.connect(out) as db:
        (qml,) = db.execute("SELECT styleQML FROM layer_styles WHERE useAsDefault").fetchone()
    assert "18,52,86" in qml  # #123456 as QGIS writes colours


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    model = make_band_mean_model(
        tmp_path / "bm.onnx", tile_size=8, class_names=["red", "green", "blue"]
    )
    for setting, expected in (
        ("green", "--set takes CLASS=#rrggbb, not 'green'"),
        ("green=blue", "the colour of 'green' 'blue' is not a #rrggbb colour"),
        ("violet=#112233", "the model has no class 'violet'"),
    ):
        result = runner.invoke(app, ["colours", str(model), "--set", setting])
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), result.output
