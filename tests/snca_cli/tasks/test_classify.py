"""Tile classification outputs (snca_cli.tasks.classify): GeoPackage fields and geometry, GeoJSON,
class-map COG, the styles they carry, areas, cancellation, output planning."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_coords
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from snca_cli.contract.class_colours import class_colours, hex_rgb
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.vector import densify_rings
from snca_cli.tasks.classify import classify_raster, expand_rasters, plan_targets
from tests.helpers.classify_data import COLOURS, NAMES, read_layer
from tests.helpers.gpkg import GPKG_APPLICATION_ID, gpkg_version, layer_styles
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model
from tests.helpers.rasters import BLUE, GREEN, RED, painted, write_raster

CLASSES = [0, 1, 2, 0, 2, 2, 1, 0, 1, 0, 2, 1]
FIELDS = ["tile_id", "row", "col", "class_id", "class_name", "score", "valid_fraction"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> OnnxModel:
    path = tmp_path_factory.mktemp("model") / "band_mean.onnx"
    return OnnxModel(make_band_mean_model(path, tile_size=16, class_names=NAMES))


def tile_box(row: int, col: int, size: float = 160.0) -> list[list[float]]:
    """The counter-clockwise ring of tile (row, col) on the default 10 m grid, 16 px tiles."""
    minx, maxy = 500000.0 + size * col, 5000000.0 - size * row
    maxx, miny = minx + size, maxy - size
    return [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]


def test_geopackage_holds_each_tiles_class_and_exact_polygon(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    summary = classify_raster(raster, model, tmp_path / "out.gpkg", top_k=3)
    assert pyogrio.list_layers(tmp_path / "out.gpkg").tolist() == [
        ["scene", "Polygon"],
        ["layer_styles", None],  # QGIS's styles (test_styles_in_files)
    ]
    assert gpkg_version(tmp_path / "out.gpkg") == (GPKG_APPLICATION_ID, 10200)
    meta, rings, fields = read_layer(tmp_path / "out.gpkg")
    assert meta["crs"] == "EPSG:32633"
    tops = [f"top{k}_{part}" for k in (1, 2, 3) for part in ("name", "prob")]
    assert list(fields) == FIELDS + tops
    assert fields["tile_id"].tolist() == list(range(12))
    assert fields["row"].tolist() == [i // 4 for i in range(12)]
    assert fields["col"].tolist() == [i % 4 for i in range(12)]
    assert fields["class_id"].tolist() == CLASSES
    assert fields["class_name"].tolist() == [NAMES[c] for c in CLASSES]
    for i in range(12):
        assert rings[i].tolist() == tile_box(i // 4, i % 4)
    means = np.array([c for row in COLOURS for c in row], np.float32) / np.float32(255)
    _, probabilities = band_mean_reference(means[:, :, None, None], 3, 3)
    assert np.allclose(fields["score"], probabilities.max(axis=1), atol=1e-6)
    order = np.argsort(-probabilities, axis=1)
    for k in range(3):
        assert fields[f"top{k + 1}_name"].tolist() == [NAMES[c] for c in order[:, k]]
        expected = np.take_along_axis(probabilities, order[:, k : k + 1], axis=1)[:, 0]
        assert np.allclose(fields[f"top{k + 1}_prob"], expected, atol=1e-6)
    assert fields["top2_name"][0] == "green"  # RED = (200, 40, 30)
    assert summary.tiles_total == summary.tiles_classified == 12 and summary.tiles_skipped == 0
    assert summary.class_tiles == {"red": 4, "green": 4, "blue": 4}
    assert summary.crs == "EPSG:32633" and summary.provider == "CPU"


def test_geojson_is_the_layer_reprojected_to_wgs84(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    summary = classify_raster(raster, model, tmp_path / "out.gpkg")
    assert summary.geojson == tmp_path / "out.geojson"
    _, rings, fields = read_layer(tmp_path / "out.gpkg")
    document = json.loads((tmp_path / "out.geojson").read_text())
    assert document["type"] == "FeatureCollection" and "crs" not in document  # RFC 7946
    features = document["features"]
    assert [f["properties"]["class_name"] for f in features] == fields["class_name"].tolist()
    dense = densify_rings(rings)  # each edge sampled, then reprojected
    lon, lat = transform_coords(
        "EPSG:32633", "EPSG:4326", dense[..., 0].ravel(), dense[..., 1].ravel()
    )
    expected = np.stack([lon, lat], axis=1).reshape(dense.shape)
    actual = np.array([f["geometry"]["coordinates"][0] for f in features])
    assert np.allclose(actual, expected, rtol=0, atol=1e-7)  # RFC 7946: 7 decimals
    assert 14.9 < actual[..., 0].min() < actual[..., 0].max() < 15.1  # UTM 33N is around 15 E
    x, y = actual[0, :, 0], actual[0, :, 1]
    assert np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0  # counter-clockwise exterior ring


def test_nodata_tiles_are_skipped_and_areas_count_each_pixel_once(tmp_path: Path, model) -> None:
    data = painted(COLOURS, 16)
    data[:, :16, :16] = 0  # tile 0 (red) empty
    raster = write_raster(tmp_path / "scene.tif", data, nodata=0)
    summary = classify_raster(raster, model, tmp_path / "out.gpkg")
    _, _, fields = read_layer(tmp_path / "out.gpkg")
    assert fields["tile_id"].tolist() == list(range(1, 12))
    assert (summary.tiles_total, summary.tiles_classified, summary.tiles_skipped) == (12, 11, 1)
    assert summary.class_tiles == {"red": 3, "green": 4, "blue": 4}
    tile_area = 160.0 * 160.0
    assert summary.class_area == {
        "red": 3 * tile_area,
        "green": 4 * tile_area,
        "blue": 4 * tile_area,
    }
    assert summary.skipped_area == tile_area and summary.area_unit == "metre²"
    assert summary.class_area_km2 == pytest.approx({"red": 0.0768, "green": 0.1024, "blue": 0.1024})
    assert summary.skipped_area_km2 == pytest.approx(0.0256)


def test_overlapping_tiles_split_the_area_by_nearest_centre(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    summary = classify_raster(
        raster,
        model,
        tmp_path / "out.gpkg",
        TilingOptions(overlap=0.5),
        class_map=tmp_path / "m.tif",
    )
    assert summary.tiles_total == 5 * 7
    assert sum(summary.class_area.values()) == pytest.approx(64 * 48 * 100.0)
    with rasterio.open(tmp_path / "m.tif") as cmap:
        classes = cmap.read(1)
        pixel_area = cmap.res[0] * cmap.res[1]
    counts = np.bincount(classes.ravel(), minlength=3)
    assert summary.class_area == {name: counts[i] * pixel_area for i, name in enumerate(NAMES)}
    _, _, fields = read_layer(tmp_path / "out.gpkg")
    tile_class = dict(zip(fields["tile_id"].tolist(), fields["class_id"].tolist(), strict=True))
    with RasterTiling.open(raster, model.metadata, TilingOptions(overlap=0.5)) as tiling:
        for row in range(0, 48, 3):
            for col in range(0, 64, 5):
                x, y = tiling.transform @ (col + 0.5, row + 0.5)
                assert classes[row, col] == tile_class[tiling.tile_at(x, y).tile_id]


def test_class_map_is_a_cloud_optimised_geotiff(tmp_path: Path, model) -> None:
    rng = np.random.default_rng(1)
    choice = rng.integers(0, 3, size=(40, 40))
    colours = np.array([RED, GREEN, BLUE])[choice]
    data = painted(colours, 16)
    data[:, 16:32, 16:32] = 0  # tile (1, 1) skipped
    raster = write_raster(tmp_path / "big.tif", data, nodata=0)
    out = tmp_path / "classes.tif"
    summary = classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out)
    assert summary.class_map == out and summary.tiles_skipped == 1
    _, _, fields = read_layer(tmp_path / "out.gpkg")
    with rasterio.open(out) as cmap:
        assert cmap.driver == "GTiff"
        assert cmap.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cmap.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert cmap.block_shapes == [(512, 512), (512, 512)]
        assert cmap.overviews(1) == cmap.overviews(2) == [2]  # 640 px -> 320 px fits a block
        assert cmap.profile["tiled"] and cmap.dtypes == ("uint8", "uint8")
        assert cmap.nodata == 255 and cmap.descriptions == ("class_id", "confidence_percent")
        assert json.loads(cmap.tags()["class_names"]) == NAMES
        assert cmap.crs.to_epsg() == 32633 and cmap.transform == from_origin(500000, 5e6, 10, 10)
        classes, confidence = cmap.read(1), cmap.read(2)
    expected = choice.copy()
    expected[1, 1] = 255
    assert np.array_equal(classes, np.repeat(np.repeat(expected, 16, 0), 16, 1))
    scores = np.full((40, 40), 255)
    scores[fields["row"], fields["col"]] = np.round(fields["score"] * 100)
    assert np.array_equal(confidence, np.repeat(np.repeat(scores, 16, 0), 16, 1))


def test_geographic_raster_in_metres(tmp_path: Path, model) -> None:
    transform = from_origin(10.0, 45.01, 0.0001, 0.0001)
    raster = write_raster(
        tmp_path / "geo.tif",
        painted([[RED, BLUE], [GREEN, RED]], 50),
        crs="EPSG:4326",
        transform=transform,
    )
    summary = classify_raster(
        raster, model, tmp_path / "out.gpkg", TilingOptions(resolution=20.0), top_k=1
    )
    assert summary.resampled and summary.crs == "EPSG:4326"
    assert summary.area_unit == "degree²" and summary.class_area_km2 is None
    meta, rings, fields = read_layer(tmp_path / "out.gpkg")
    assert list(fields) == FIELDS + ["top1_name", "top1_prob"]
    document = json.loads((tmp_path / "out.geojson").read_text())
    geojson = np.array([f["geometry"]["coordinates"][0] for f in document["features"]])
    assert np.allclose(geojson, densify_rings(rings), rtol=0, atol=1e-7)
    # 0.01 deg = 788 m east-west at 45 N: 39 px of 20 m, 3 tiles of 16 px with the last shifted
    assert summary.tiles_total == 3 * 4
    top_left = fields["class_name"][0]
    assert top_left == "red" and rings[0, 0, 0] == 10.0 and rings[0, 2, 1] == 45.01


def test_cancel_leaves_no_file_at_all(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))

    def run(folder: Path, cancel_at: int | None) -> int:
        polls = []

        def cancelled() -> bool:
            polls.append(1)
            return len(polls) == cancel_at

        folder.mkdir()
        classify_raster(
            raster,
            model,
            folder / "a.gpkg",
            batch_size=2,
            class_map=folder / "m.tif",
            cancelled=cancelled,
        )
        return len(polls)

    polls = run(tmp_path / "probe", None)
    assert len(list((tmp_path / "probe").iterdir())) == 5  # the class map with its 2 sidecars
    # mid-run, and at the last poll: after every file is written, before any is renamed
    for cancel_at in (3, polls):
        with pytest.raises(Cancelled):
            run(tmp_path / f"cancel{cancel_at}", cancel_at)
        assert list((tmp_path / f"cancel{cancel_at}").iterdir()) == []


def test_interrupt_in_a_hook_leaves_no_file(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    out = tmp_path / "out"

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        classify_raster(raster, model, out / "a.gpkg", batch_size=2, progress=interrupt)
    assert list(out.iterdir()) == []


def test_existing_outputs_need_force(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    classify_raster(raster, model, tmp_path / "out.gpkg")
    with pytest.raises(SncaError, match="out.gpkg exists; use --force"):
        classify_raster(raster, model, tmp_path / "out.gpkg")
    classify_raster(raster, model, tmp_path / "out.gpkg", force=True)
    # a GeoJSON beside it that snca did not write is replaced only when named
    (tmp_path / "out.geojson").write_text("keep me")
    with pytest.raises(SncaError, match="refusing to replace .*out.geojson"):
        classify_raster(raster, model, tmp_path / "out.gpkg", force=True)
    assert (tmp_path / "out.geojson").read_text() == "keep me"
    geojson = tmp_path / "out.geojson"
    classify_raster(raster, model, tmp_path / "out.gpkg", geojson=geojson, force=True)
    assert json.loads((tmp_path / "out.geojson").read_text())["type"] == "FeatureCollection"


def test_top_k_is_checked_and_capped(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    with pytest.raises(SncaError, match="top-k"):
        classify_raster(raster, model, tmp_path / "a.gpkg", top_k=0)
    summary = classify_raster(raster, model, tmp_path / "b.gpkg", top_k=7)
    assert summary.top_k == 3
    assert list(read_layer(tmp_path / "b.gpkg")[2])[-1] == "top3_prob"


def test_plan_targets_single_and_folder_outputs(tmp_path: Path) -> None:
    a, b = tmp_path / "in" / "a.tif", tmp_path / "in" / "b.tif"
    a.parent.mkdir()
    for path in (a, b):
        path.write_bytes(b"")
    (tmp_path / "in" / "notes.txt").write_text("")
    single = plan_targets([a], tmp_path / "o.gpkg", class_map=tmp_path / "m.tif")
    assert single[0].paths() == [
        tmp_path / "o.gpkg",
        tmp_path / "o.geojson",
        tmp_path / "m.tif",
        tmp_path / "m.tif.aux.xml",
        tmp_path / "m.qml",
    ]
    rasters = expand_rasters([tmp_path / "in"])
    assert rasters == [a, b]
    many = plan_targets(rasters, tmp_path / "out", class_map=tmp_path / "maps")
    assert [t.paths() for t in many] == [
        [
            tmp_path / "out" / f"{s}.gpkg",
            tmp_path / "out" / f"{s}.geojson",
            tmp_path / "maps" / f"{s}_classes.tif",
            tmp_path / "maps" / f"{s}_classes.tif.aux.xml",
            tmp_path / "maps" / f"{s}_classes.qml",
        ]
        for s in ("a", "b")
    ]
    with pytest.raises(SncaError, match="must be a folder"):
        plan_targets(rasters, tmp_path / "o.gpkg")
    with pytest.raises(SncaError, match="must be a .gpkg file"):
        plan_targets([a], tmp_path / "o.shp")
    with pytest.raises(SncaError, match="named 'a'"):
        plan_targets([a, tmp_path / "a.tif"], tmp_path / "out")
    with pytest.raises(SncaError, match="named 'a' \\(ignoring case\\)"):
        plan_targets([a, tmp_path / "A.tif"], tmp_path / "out")
    with pytest.raises(SncaError, match="is one of the input rasters"):
        plan_targets([a], tmp_path / "o.gpkg", class_map=a)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SncaError, match="holds no rasters"):
        expand_rasters([tmp_path / "empty"])


def test_outputs_carry_their_styles_for_the_classes_present(tmp_path: Path, model) -> None:
    two = [[RED, GREEN, RED, RED], [GREEN, RED, RED, GREEN], [RED, RED, GREEN, RED]]  # no blue
    raster = write_raster(tmp_path / "scene.tif", painted(two, 16))
    out = tmp_path / "classes.tif"
    summary = classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out)
    colours = class_colours(NAMES)
    assert summary.class_colours == colours and summary.class_tiles["blue"] == 0

    # the GeoPackage: the layer's default QGIS style, categories of the classes present
    (row,) = layer_styles(tmp_path / "out.gpkg")
    assert (row["f_table_name"], row["f_geometry_column"], row["useAsDefault"]) == (
        "scene",
        "geom",
        1,
    )
    renderer = ET.fromstring(row["styleQML"].split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("attr") == "class_name"
    labels = [(c.get("value"), c.get("label")) for c in renderer.iter("category")]
    assert labels == [("red", "red (8)"), ("green", "green (4)")]

    # the class map: GDAL's palette and category names from the .aux.xml, QGIS's .qml
    pam, qml = Path(f"{out}.aux.xml"), tmp_path / "classes.qml"
    with rasterio.open(out) as cmap:
        assert cmap.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert [i.name for i in cmap.colorinterp] == ["palette", "undefined"]  # band 2 no alpha
        colormap = cmap.colormap(1)
    assert [colormap[i][:3] for i in range(3)] == [hex_rgb(colours[n]) for n in NAMES]
    band = ET.parse(pam).getroot().find("PAMRasterBand")
    assert [c.text for c in band.iter("Category")] == NAMES
    palette = ET.fromstring(qml.read_text().split("\n", 1)[1]).find("pipe/rasterrenderer")
    assert palette.get("type") == "paletted" and palette.get("band") == "1"
    entries = [
        (e.get("value"), e.get("color"), e.get("label")) for e in palette.iter("paletteEntry")
    ]
    assert entries == [("0", colours["red"], "red (8)"), ("1", colours["green"], "green (4)")]

    # the sidecars are outputs: refused when they exist, replaced with --force
    out.unlink()
    with pytest.raises(SncaError, match="classes.tif.aux.xml exists; use --force"):
        classify_raster(raster, model, tmp_path / "again.gpkg", class_map=out)
    classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out, force=True)
    qml.write_text("old")  # a style snca did not write: kept, even with --force
    with pytest.raises(SncaError, match="refusing to replace .*classes.qml"):
        classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out, force=True)
    assert qml.read_text() == "old"
    qml.unlink()
    classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out, force=True)
    assert out.exists() and qml.read_text().startswith("<!DOCTYPE qgis")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("classes")) == [
        "classes.qml",
        "classes.tif",
        "classes.tif.aux.xml",
    ]


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="needs gdalinfo (gdal-bin)")
def test_gdalinfo_shows_the_class_maps_colour_table_and_categories(tmp_path: Path, model) -> None:
    raster = write_raster(tmp_path / "scene.tif", painted(COLOURS, 16))
    out = tmp_path / "classes.tif"
    classify_raster(raster, model, tmp_path / "out.gpkg", class_map=out)
    info = subprocess.run(["gdalinfo", str(out)], capture_output=True, text=True, check=True)
    band1 = info.stdout.split("Band 1 ", 1)[1].split("Band 2 ", 1)[0]
    assert "ColorInterp=Palette" in band1
    assert "Color Table (RGB with 3 entries)" in band1
    lines = [line.strip() for line in band1.splitlines()]
    start = lines.index("Categories:") + 1
    assert lines[start : start + 3] == ["0: red", "1: green", "2: blue"]
    assert "ColorInterp=Undefined" in info.stdout.split("Band 2 ", 1)[1]


@pytest.mark.shared_data
def test_landsat_rgb_with_the_band_mean_model(tmp_path: Path, landsat_rgb: Path) -> None:
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx", tile_size=64, class_names=NAMES))
    summary = classify_raster(
        landsat_rgb, model, tmp_path / "landsat.gpkg", class_map=tmp_path / "landsat.tif"
    )
    assert summary.crs == "EPSG:32618"
    # 791 x 718 px: ceil((791 - 64) / 64) + 1 = 13 columns, ceil((718 - 64) / 64) + 1 = 12 rows
    assert summary.tiles_total == 13 * 12
    with rasterio.open(landsat_rgb) as src:
        transform = src.transform
        valid = np.all(src.read_masks() > 0, axis=0)
        pixels = src.read().astype(np.float64) / 255.0
    offsets_c = [min(64 * i, 791 - 64) for i in range(13)]
    offsets_r = [min(64 * i, 718 - 64) for i in range(12)]
    expected_kept, expected_class = [], []
    for r, row_off in enumerate(offsets_r):
        for c, col_off in enumerate(offsets_c):
            window = (slice(row_off, row_off + 64), slice(col_off, col_off + 64))
            if valid[window].mean() >= 0.5:
                expected_kept.append(r * 13 + c)
                expected_class.append(
                    int(pixels[:, window[0], window[1]][:, valid[window]].mean(axis=1).argmax())
                )
    assert summary.tiles_skipped == 156 - len(expected_kept) > 0  # the no-data collar
    meta, rings, fields = read_layer(tmp_path / "landsat.gpkg")
    assert meta["crs"] == "EPSG:32618"
    assert fields["tile_id"].tolist() == expected_kept
    assert fields["class_id"].tolist() == expected_class
    # edge tiles shifted inward: row 2, last column (valid 0.50) and last row, column 9
    for tile_id, window in ((2 * 13 + 12, (791 - 64, 128)), (11 * 13 + 9, (576, 718 - 64))):
        minx, miny, maxx, maxy = window_bounds(Window(*window, 64, 64), transform)
        ring = rings[expected_kept.index(tile_id)].tolist()
        assert ring == [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    assert rings[:, :, 0].max() == transform.c + 791 * transform.a
    assert rings[:, :, 1].min() == transform.f + 718 * transform.e
    with rasterio.open(tmp_path / "landsat.tif") as cmap:
        assert cmap.transform == transform and cmap.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cmap.overviews(1) == [2]
