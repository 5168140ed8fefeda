"""Labelled tiles as chips (snca_cli.tasks.chips): each chip is the model input of its tile, as
8-bit, georeferenced on the tile's window; ``chips.json`` records every chip; the folder is a
scene folder ``snca train`` and ``snca evaluate`` read; bad input writes nothing.

Painted rasters and the band-mean model: a tile's input is its colour, known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.image_input import image_as_model_input
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.scene_images import scan_scene_folder
from snca_cli.tasks.chips import RECORD_NAME, ChipsConfig, chips_resolution_m, write_chips
from snca_cli.tasks.labels import label_tiles, read_labels
from tests.helpers.index_data import TILE
from tests.helpers.labels import LANDSAT_PLACES, landsat_points_file, tile_points_file
from tests.helpers.rasters import painted, painted_raster, write_raster

RED, GREEN = (200, 30, 30), (30, 200, 40)
PAINT = np.array(
    [
        [RED, (190, 40, 20), (210, 20, 40), GREEN],
        [(40, 190, 30), (20, 210, 40), (30, 180, 20), (200, 40, 30)],
        [(30, 40, 210), (195, 35, 25), (35, 205, 35), (30, 30, 200)],
    ],
    dtype=np.uint8,
)
LABELS = {"red": [(0, 0), (0, 1), (0, 2), (1, 3)], "green": [(0, 3), (1, 0), (1, 1), (1, 2)]}


def _chips(tmp_path: Path, model: OnnxModel, raster: Path, **kwargs) -> tuple[Path, dict]:
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    out = tmp_path / "chips"
    summary = write_chips(ChipsConfig(out, [raster], labels, "cover", model.path, **kwargs))
    assert summary.output == out and summary.skipped == 0
    return out, json.loads((out / RECORD_NAME).read_text())


def test_each_chip_is_its_tiles_model_input_on_the_tiles_window(
    tmp_path: Path, model: OnnxModel
) -> None:
    raster = painted_raster(tmp_path / "painted.tif", PAINT, TILE)
    out, record = _chips(tmp_path, model, raster)
    assert record["counts"] == {"green": 4, "red": 4}
    assert record["labels"] == {"file": "labels.geojson", "field": "cover"}
    assert sorted(p.name for p in (out / "red").iterdir()) == [
        "painted_r0_c0.tif", "painted_r0_c1.tif", "painted_r0_c2.tif", "painted_r1_c3.tif"
    ]  # fmt: skip
    with rasterio.open(raster) as src:
        crs, transform = src.crs, src.transform
    for chip in record["chips"]:
        row, col = chip["row"], chip["col"]
        assert (chip["class"], chip["tile_id"]) == (
            "red" if [row, col] in map(list, LABELS["red"]) else "green",
            row * 4 + col,
        )
        with rasterio.open(out / chip["file"]) as src:
            assert (src.count, src.width, src.height, src.dtypes[0]) == (3, TILE, TILE, "uint8")
            assert src.crs == crs
            window = Window(col * TILE, row * TILE, TILE, TILE)
            assert src.transform == window_transform(window, transform)
            assert list(src.bounds) == pytest.approx(chip["bounds"])
            # 8-bit input, /255 by the model: the chip holds the raster's own values
            assert (src.read() == PAINT[row, col][:, None, None]).all()


def test_uint16_reflectance_chips_hold_the_stretched_input_classify_shows(
    tmp_path: Path, model: OnnxModel
) -> None:
    """Reflectance (uint16, 0..10000) is stretched per raster by the auto scaling; the chip is
    that input as 8-bit, so reading it back as an image gives the tile's input to within one
    grey level."""
    reflectance = painted(PAINT, TILE, np.uint16) * 12 + 300
    raster = write_raster(tmp_path / "s2.tif", reflectance)
    out, record = _chips(tmp_path, model, raster)
    assert record["rasters"]["s2"]["file"] == "s2.tif"  # keyed by the name its chips carry
    scaling = record["rasters"]["s2"]["scaling"]
    assert scaling["method"] == "percentile"  # values use a sliver of the uint16 range
    metadata = model.metadata
    with RasterTiling.open(raster, metadata, TilingOptions()) as tiling:
        labelled = label_tiles(read_labels(tmp_path / "labels.geojson", "cover"), tiling).tiles
        assert len(labelled) == len(record["chips"]) == 8
        for tile in labelled:
            pixels, _ = tiling.read_tile(tile.tile)
            chip = out / tile.class_name / f"s2_r{tile.tile.row}_c{tile.tile.col}.tif"
            read_back = image_as_model_input(
                chip, size=TILE, input_bands=3, input_scale=metadata.input_scale
            )
            np.testing.assert_allclose(read_back, pixels, atol=0.5 / 255 + 1e-6)
            assert pixels.max() > 0.5  # stretched: the raw values are all below 0.05 of 65535


def test_the_chips_folder_is_a_scene_folder(tmp_path: Path, model: OnnxModel) -> None:
    raster = painted_raster(tmp_path / "painted.tif", PAINT, TILE)
    out, _ = _chips(tmp_path, model, raster)
    folder = scan_scene_folder(out)
    assert folder.class_names == ["green", "red"] and len(folder.items) == 8
    # cut at the raster's own pixels: no resolution for the model trained on them
    assert chips_resolution_m(out) is None
    assert chips_resolution_m(tmp_path / "not-chips") is None


def test_an_existing_folder_is_kept_unless_forced_and_bad_labels_write_nothing(
    tmp_path: Path, model: OnnxModel
) -> None:
    raster = painted_raster(tmp_path / "painted.tif", PAINT, TILE)
    out, _ = _chips(tmp_path, model, raster)
    labels = tmp_path / "labels.geojson"
    with pytest.raises(SncaError, match="exists"):
        write_chips(ChipsConfig(out, [raster], labels, "cover", model.path))
    summary = write_chips(ChipsConfig(out, [raster], labels, "cover", model.path, force=True))
    assert sum(summary.counts.values()) == 8
    missing = tmp_path / "none"
    with pytest.raises(SncaError, match="no field 'kind'"):
        write_chips(ChipsConfig(missing, [raster], labels, "kind", model.path))
    one = tile_points_file(tmp_path / "one.geojson", {"red": LABELS["red"]})
    with pytest.raises(SncaError, match="at least two classes"):
        write_chips(ChipsConfig(missing, [raster], one, "cover", model.path))
    with pytest.raises(SncaError, match="at least one raster"):
        write_chips(ChipsConfig(missing, [], labels, "cover", model.path))
    assert not missing.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "band_mean.onnx", "chips", "labels.geojson", "one.geojson", "painted.tif"
    ]  # fmt: skip


def test_tiles_without_enough_valid_pixels_are_skipped_with_a_warning(
    tmp_path: Path, model: OnnxModel
) -> None:
    image = painted(PAINT, TILE)
    image[:, :TILE, :TILE] = 0  # tile (0, 0) is no-data
    raster = write_raster(tmp_path / "holes.tif", image, nodata=0)
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    summary = write_chips(ChipsConfig(tmp_path / "c", [raster], labels, "cover", model.path))
    assert summary.skipped == 1 and summary.counts == {"green": 4, "red": 3}
    assert any("1 labelled tile(s) have too few valid pixels" in w for w in summary.warnings)


@pytest.mark.shared_data
def test_chips_of_the_landsat_scene_lie_on_their_tiles(tmp_path: Path, landsat_rgb: Path) -> None:
    """Points (EPSG:4326) on the real 300 m scene, tiled at 100 m for the shipped model: every
    chip is georeferenced on a 100 m grid in the scene's CRS, over the labelled place."""
    labels = landsat_points_file(tmp_path / "labels.geojson", landsat_rgb, LANDSAT_PLACES)
    out = tmp_path / "chips"
    summary = write_chips(
        ChipsConfig(out, [landsat_rgb], labels, "kind", tiling=TilingOptions(resolution=100.0))
    )
    # two coastal points lie on tiles mostly in the scene's no-data collar
    assert summary.counts == {"deep water": 6, "land": 5, "shallow water": 3}
    assert summary.skipped == 2
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["rasters"]["RGB.byte"]["pixel_size"] == [100.0, 100.0]
    assert record["rasters"]["RGB.byte"]["resampled"]
    assert chips_resolution_m(out) == 100.0  # what snca export writes as the model's
    with rasterio.open(landsat_rgb) as src:
        crs = src.crs
        places = {
            name: [src.xy(row, col) for col, row in points]
            for name, points in LANDSAT_PLACES.items()
        }
    metadata = OnnxModel(resolve_model(None)).metadata
    with RasterTiling.open(landsat_rgb, metadata, TilingOptions(resolution=100.0)) as tiling:
        tiles = {tile.tile_id: tile for tile in tiling.tiles()}
        for chip in record["chips"]:
            pixels, _ = tiling.read_tile(tiles[chip["tile_id"]])
            with rasterio.open(out / chip["file"]) as src:
                assert src.crs == crs and src.res == (100.0, 100.0)
                left, bottom, right, top = src.bounds
                assert any(
                    left <= x < right and bottom < y <= top for x, y in places[chip["class"]]
                )
                assert np.abs(src.read() / 255.0 - pixels).max() <= 0.5 / 255 + 1e-6
