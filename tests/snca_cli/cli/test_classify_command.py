"""`snca classify` through the CLI: options, the printed summary, the shipped model, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.classify_data import COLOURS, NAMES, read_layer
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import BLUE, GREEN, RED, painted, utm_transform, write_raster


def test_cli_classifies_with_options_and_prints_the_summary(tmp_path: Path) -> None:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    out = tmp_path / "res" / "scene.gpkg"
    args = ["classify", str(raster), "-m", str(model), "-o", str(out), "--bands", "3,2,1"]
    args += ["--overlap", "50%", "--top-k", "2", "--class-map", str(tmp_path / "m.tif")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "provider CPU" in result.stdout
    assert "35 tiles: 35 classified, 0 skipped" in result.stdout
    assert "scene.tif (EPSG:32633)" in result.stdout
    # stderr is not a terminal here: no bar, and a run shorter than the plain-line interval
    # writes no progress line either
    assert not [line for line in result.stderr.splitlines() if "tiles/s" in line]
    _, _, fields = read_layer(out)
    assert list(fields)[-2:] == ["top2_name", "top2_prob"] and len(fields["tile_id"]) == 35
    assert fields["class_name"][0] == "blue"  # RED read as bands 3, 2, 1
    assert (tmp_path / "res" / "scene.geojson").is_file() and (tmp_path / "m.tif").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists; use --force" in again.stderr
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0


def test_cli_defaults_to_the_shipped_model_and_its_overlap(tmp_path: Path, monkeypatch) -> None:
    shipped = make_band_mean_model(
        tmp_path / "shipped.onnx", tile_size=16, class_names=NAMES, tiles_overlap="50"
    )
    monkeypatch.setattr("snca_cli.runtime.default_model.default_model_path", lambda: shipped)
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))  # 64 x 48 px
    result = CliRunner().invoke(app, ["classify", str(raster), "-o", str(tmp_path / "a.gpkg")])
    assert result.exit_code == 0, result.output
    assert "model shipped.onnx" in result.stdout
    # the model's 50 % overlap: stride 8 px, 7 x 5 tiles
    assert "35 tiles: 35 classified" in result.stdout
    args = ["classify", str(raster), "-o", str(tmp_path / "b.gpkg"), "--overlap", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "12 tiles: 12 classified" in result.stdout


def test_cli_classifies_a_folder_into_a_folder(tmp_path: Path) -> None:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_raster(rasters / "a.tif", painted([[RED, RED]], 16))
    write_raster(rasters / "b.tif", painted([[BLUE], [GREEN]], 16))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["classify", str(rasters), "-m", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.geojson", "a.gpkg", "b.geojson", "b.gpkg"]
    assert read_layer(out / "a.gpkg")[2]["class_name"].tolist() == ["red", "red"]
    assert read_layer(out / "b.gpkg")[2]["class_name"].tolist() == ["blue", "green"]
    assert pyogrio.list_layers(out / "b.gpkg").tolist() == [
        ["b", "Polygon"],
        ["layer_styles", None],
    ]


def test_cli_reads_a_gdal_virtual_file_as_named(tmp_path: Path) -> None:
    from rasterio.io import MemoryFile

    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    with MemoryFile(raster.read_bytes(), filename="scene.tif") as memory:
        out = tmp_path / "v.gpkg"
        result = CliRunner().invoke(
            app, ["classify", memory.name, "-m", str(model), "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert "12 tiles: 12 classified" in result.stdout
        idx = tmp_path / "idx"
        args = ["index", "build", memory.name, "-m", str(model), "-o", str(idx)]
        assert CliRunner().invoke(app, args).exit_code == 0
    manifest = (idx / "manifest.json").read_text()
    assert f'"path": "{memory.name}"' in manifest  # as named, not resolved against the cwd


def test_cli_warns_on_a_raster_far_outside_the_training_resolutions(tmp_path: Path) -> None:
    model = make_band_mean_model(
        tmp_path / "m.onnx", tile_size=16, class_names=NAMES, training_resolution_m="[0.5, 8]"
    )
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))  # 10 m pixels
    args = ["classify", str(raster), "-m", str(model), "-o", str(tmp_path / "a.gpkg")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # 10 m is within 4 x 8 m
    coarse = write_raster(
        tmp_path / "coarse.tif", painted(COLOURS, 16), transform=utm_transform(40.0)
    )
    args = ["classify", str(coarse), "-m", str(model), "-o", str(tmp_path / "b.gpkg")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: coarse.tif: the raster's 40 m/px is far coarser than the 0.5-8 m/px" in (
        " ".join(result.stderr.split())
    )
    index = ["index", "build", str(coarse), "-m", str(model), "-o", str(tmp_path / "idx")]
    result = CliRunner().invoke(app, index)
    assert result.exit_code == 0, result.output
    assert "warning: coarse.tif: the raster's 40 m/px" in " ".join(result.stderr.split())


def test_a_raster_whose_every_tile_is_skipped_gives_empty_outputs(tmp_path: Path) -> None:
    """All no-data: nothing to classify is no error (it once was "unexpected ValueError")."""
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    raster = write_raster(tmp_path / "empty.tif", np.zeros((3, 32, 32), np.uint8), nodata=0)
    out = tmp_path / "empty.gpkg"
    result = CliRunner().invoke(app, ["classify", str(raster), "-m", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "unexpected" not in result.output
    assert pyogrio.read_info(out, layer=0)["features"] == 0
    assert pyogrio.read_info(out.with_suffix(".geojson"))["features"] == 0
